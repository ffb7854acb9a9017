//! Requests to `POST /v1/emotions` predicted together. Each admitted
//! request joins the pending list, then waits for one of the `--workers`;
//! whichever request gets a worker takes every pending request, in arrival
//! order and up to `--max-batch-turns` turns, into one call of the model,
//! and each request is sent its own predictions. So the text encoder
//! sorts the turns of several conversations into its length-matched
//! batches and shares them among its threads, where one conversation
//! alone leaves batches part-empty. Nothing waits for a batch to fill: a
//! request that finds the worker free is predicted at once, alone.
//!
//! A batch that fails (one request's turn the model cannot read) is
//! predicted again request by request, so each request gets its own
//! answer. A request that times out before a batch took it leaves the
//! pending list (and frees its queue slot) at once; one taken into a batch
//! keeps its slot until the batch ends, as any running prediction does.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use mmer_core::Dialogue;
use mmer_train::Prediction;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::error::{ApiError, ErrorType};
use crate::model::Predict;
use crate::server::AppState;

type Answer = Result<Vec<Prediction>, ApiError>;

/// The requests waiting for a worker.
#[derive(Default)]
pub(crate) struct Batcher {
    pending: Mutex<Vec<Job>>,
    next_id: AtomicU64,
}

/// One request's dialogues, its queue slot, and where its answer goes.
struct Job {
    id: u64,
    dialogues: Vec<Dialogue>,
    turns: usize,
    reply: oneshot::Sender<Answer>,
    _admitted: OwnedSemaphorePermit,
}

/// Takes a request's job off the pending list if the request is dropped
/// (timed out) before a batch took it.
struct Withdraw<'a> {
    batcher: &'a Batcher,
    id: u64,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.batcher.lock().retain(|job| job.id != self.id);
    }
}

impl Batcher {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Job>> {
        // A panic while the list was held cannot leave it half-changed
        // (push, retain and drain only): go on with it.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pending jobs a batch takes: in arrival order while they fit in
    /// `max_turns` turns (the first one always), skipping requests whose
    /// client is gone.
    fn take(&self, max_turns: usize) -> Vec<Job> {
        let mut pending = self.lock();
        pending.retain(|job| !job.reply.is_closed());
        let mut turns = 0;
        let count = pending
            .iter()
            .take_while(|job| {
                turns += job.turns;
                turns == job.turns || turns <= max_turns
            })
            .count();
        pending.drain(..count).collect()
    }
}

/// The predictions for `dialogues`, predicted in a batch with the other
/// requests waiting (see the module doc). `admitted` is the request's
/// queue slot.
///
/// # Errors
/// The model's error for this request's turns; 503 when shutting down; 500
/// when the prediction panicked.
pub(crate) async fn predict(
    state: &AppState,
    dialogues: Vec<Dialogue>,
    admitted: OwnedSemaphorePermit,
) -> Answer {
    let batcher = &state.batcher;
    let (reply, answer) = oneshot::channel();
    let id = batcher.next_id.fetch_add(1, Ordering::Relaxed);
    let turns = dialogues.iter().map(|d| d.utterances.len()).sum();
    batcher.lock().push(Job {
        id,
        dialogues,
        turns,
        reply,
        _admitted: admitted,
    });
    let _withdraw = Withdraw { batcher, id };
    let worker = state.worker().await?;
    let jobs = batcher.take(state.config.max_batch_turns);
    if !jobs.is_empty() {
        state.metrics.record_batch(jobs.len());
        let model = state.model.clone();
        // Not awaited: each job's answer comes through its channel, also
        // this request's (when another batch took it, its worker is
        // simply given back).
        drop(tokio::task::spawn_blocking(move || {
            let _worker = worker;
            run(model.as_ref(), jobs);
        }));
    }
    answer.await.unwrap_or_else(|_| {
        Err(ApiError::new(
            ErrorType::Backend,
            "the prediction failed (the worker stopped)",
        ))
    })
}

/// Predicts `jobs` in one call and sends each its predictions; on a
/// failure, predicts each alone.
fn run(model: &dyn Predict, jobs: Vec<Job>) {
    let alone = |job: Job| {
        let answer = model
            .predict(job.dialogues)
            .map_err(|err| ApiError::from_prediction(&err));
        let _ = job.reply.send(answer);
    };
    if jobs.len() == 1 {
        jobs.into_iter().for_each(alone);
        return;
    }
    let all: Vec<Dialogue> = jobs.iter().flat_map(|j| j.dialogues.clone()).collect();
    let total: usize = jobs.iter().map(|j| j.turns).sum();
    match model.predict(all) {
        Ok(predictions) if predictions.len() == total => {
            let mut predictions = predictions.into_iter();
            for job in jobs {
                let own = predictions.by_ref().take(job.turns).collect();
                let _ = job.reply.send(Ok(own));
            }
        }
        _ => jobs.into_iter().for_each(alone),
    }
}
