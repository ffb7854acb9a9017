//! Decoding real and generated media through ffmpeg.
//!
//! Real clips: the 6 CREMA-D FLV files (VP6 + MP3) in `../shared/data`.
//! Generated fixtures are made at test time with ffmpeg's lavfi sources
//! (testsrc + sine, anullsrc) and an EmoDB clip muxed as audio; nothing is
//! downloaded. Each test skips with a message when ffmpeg or the data is
//! absent.

use std::path::{Path, PathBuf};
use std::process::Command;

use mmer_media::{AudioState, Error, Ffmpeg, KeyframeOptions};

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// ffmpeg when installed, else `None` after printing why the test skips.
fn ffmpeg_or_skip(test: &str) -> Option<Ffmpeg> {
    let ff = Ffmpeg::from_env();
    if ff.is_available() {
        Some(ff)
    } else {
        eprintln!("{test}: skipped, ffmpeg/ffprobe not installed (scripts/setup.sh)");
        None
    }
}

/// Runs the ffmpeg program with `args` (a fixture generator).
fn generate(args: &[&str], out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "fixture generation failed: {args:?}");
}

/// 2 s of testsrc 320×240 25 fps + a 440 Hz sine, H.264/AAC in MP4.
fn av_clip(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    generate(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
        &out,
    );
    out
}

#[test]
fn crema_d_clips_decode_with_audio_and_frames() {
    let Some(ff) = ffmpeg_or_skip("crema_d") else {
        return;
    };
    let dir = shared_data().join("crema-d");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("crema_d: skipped, {} not found", dir.display());
        return;
    };
    let mut clips: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "flv"))
        .collect();
    clips.sort();
    assert_eq!(clips.len(), 6, "CREMA-D fixture has 6 clips");
    for clip in &clips {
        let info = ff.probe(clip).unwrap();
        let video = info.video.as_ref().expect("video stream");
        assert_eq!(
            (video.codec.as_str(), video.width, video.height),
            ("vp6f", 480, 360)
        );
        assert_eq!(info.audio.as_ref().expect("audio").codec, "mp3");
        let audio = ff.decode_audio(&info).unwrap();
        assert_eq!(audio.state, AudioState::Present, "{}", clip.display());
        let d = info.duration_s.unwrap();
        assert!(
            (audio.duration_s() - d).abs() < 0.15,
            "{}: audio {:.3} s vs container {d:.3} s",
            clip.display(),
            audio.duration_s()
        );
        let frames = ff
            .keyframes(
                &info,
                &KeyframeOptions {
                    count: 8,
                    max_side: None,
                    ..KeyframeOptions::default()
                },
            )
            .unwrap();
        assert_eq!(frames.len(), 8, "{}", clip.display());
        for pair in frames.windows(2) {
            assert!(pair[0].time_s < pair[1].time_s, "keyframe times increase");
        }
        let f = &frames[3];
        assert_eq!((f.width, f.height, f.data.len()), (480, 360, 480 * 360 * 3));
        // A real face video: not a blank frame.
        let mean = f.data.iter().map(|&b| f64::from(b)).sum::<f64>() / f.data.len() as f64;
        assert!((20.0..235.0).contains(&mean), "mean intensity {mean}");
    }
}

#[test]
fn generated_av_clip_audio_and_scaled_frames() {
    let Some(ff) = ffmpeg_or_skip("generated_av") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clip = av_clip(dir.path(), "av.mp4");
    let info = ff.probe(&clip).unwrap();
    let v = info.video.as_ref().unwrap();
    assert_eq!((v.width, v.height), (320, 240));
    assert!((v.fps.unwrap() - 25.0).abs() < 1e-6);
    let audio = ff.decode_audio(&info).unwrap();
    assert_eq!(audio.state, AudioState::Present);
    assert!(
        (audio.duration_s() - 2.0).abs() < 0.1,
        "{}",
        audio.duration_s()
    );
    // The sine's amplitude survives AAC + resampling (ffmpeg sine is 1/8 full scale).
    let peak = audio.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!((0.08..0.2).contains(&peak), "peak {peak}");
    let frames = ff
        .keyframes(
            &info,
            &KeyframeOptions {
                count: 4,
                max_side: Some(160),
                ..KeyframeOptions::default()
            },
        )
        .unwrap();
    assert_eq!(frames.len(), 4);
    assert_eq!((frames[0].width, frames[0].height), (160, 120));
    // Slice centres of the 1.96 s from the first to the last frame start.
    for (f, want) in frames.iter().zip([0.245, 0.735, 1.225, 1.715]) {
        assert!((f.time_s - want).abs() < 0.041, "{} vs {want}", f.time_s);
    }
}

#[test]
fn audio_only_video_only_and_silent_tracks_are_states() {
    let Some(ff) = ffmpeg_or_skip("stream_states") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let audio_only = dir.path().join("audio.m4a");
    generate(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:duration=1",
            "-c:a",
            "aac",
        ],
        &audio_only,
    );
    let info = ff.probe(&audio_only).unwrap();
    assert!(info.video.is_none());
    assert_eq!(ff.decode_audio(&info).unwrap().state, AudioState::Present);
    let err = ff
        .keyframes(&info, &KeyframeOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::NoStream { kind: "video", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("audio.m4a"), "{err}");

    let video_only = dir.path().join("video.mkv");
    generate(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=1",
            "-c:v",
            "mpeg4",
        ],
        &video_only,
    );
    let info = ff.probe(&video_only).unwrap();
    assert!(info.audio.is_none());
    let audio = ff.decode_audio(&info).unwrap();
    assert_eq!(audio.state, AudioState::Absent);
    assert!(audio.samples.is_empty());
    assert_eq!(
        ff.keyframes(&info, &KeyframeOptions::default())
            .unwrap()
            .len(),
        8
    );

    let silent = dir.path().join("silent.mkv");
    generate(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=1",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=48000:cl=stereo",
            "-c:v",
            "mpeg4",
            "-c:a",
            "pcm_s16le",
            "-shortest",
        ],
        &silent,
    );
    let info = ff.probe(&silent).unwrap();
    let audio = ff.decode_audio(&info).unwrap();
    assert_eq!(audio.state, AudioState::Silent);
    assert!(!audio.samples.is_empty());
}

#[test]
fn emodb_speech_muxed_with_video_decodes_like_the_wav() {
    let Some(ff) = ffmpeg_or_skip("emodb_mux") else {
        return;
    };
    let wav = shared_data().join("emodb/wav/03a01Fa.wav");
    if !wav.exists() {
        eprintln!("emodb_mux: skipped, {} not found", wav.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("speech.mkv");
    let wav_arg = wav.to_str().unwrap();
    generate(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=128x96:rate=25:duration=2",
            "-i",
            wav_arg,
            "-c:v",
            "mpeg4",
            "-c:a",
            "pcm_s16le",
            "-shortest",
        ],
        &clip,
    );
    let info = ff.probe(&clip).unwrap();
    let decoded = ff.decode_audio(&info).unwrap();
    assert_eq!(decoded.state, AudioState::Present);
    // Same 16 kHz signal as mmer-audio's own WAV path, up to resampler differences.
    let reference = mmer_audio::load_16k_mono(&wav).unwrap();
    let n = decoded.samples.len().min(reference.len());
    assert!(n > 16_000, "{n} samples");
    let dot: f64 = (0..n)
        .map(|i| f64::from(decoded.samples[i]) * f64::from(reference[i]))
        .sum();
    let norm = |x: &[f32]| {
        x[..n]
            .iter()
            .map(|v| f64::from(*v).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let corr = dot / (norm(&decoded.samples) * norm(&reference));
    assert!(
        corr > 0.99,
        "correlation with mmer-audio's resampling {corr}"
    );
}

#[test]
fn zero_length_truncated_and_missing_files_are_clear_errors() {
    let Some(ff) = ffmpeg_or_skip("bad_files") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let err = ff.probe(&empty).unwrap_err();
    assert!(matches!(err, Error::ZeroLength { .. }), "{err}");
    assert!(err.to_string().contains("empty.mp4"), "{err}");

    let full = av_clip(dir.path(), "full.mp4");
    let bytes = std::fs::read(&full).unwrap();
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = ff.probe(&truncated).unwrap_err();
    match &err {
        Error::Corrupt { path, stderr, .. } => {
            assert_eq!(path, &truncated);
            assert!(stderr.contains("moov atom not found"), "{stderr}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }

    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, b"this is not a video at all").unwrap();
    assert!(matches!(
        ff.probe(&text).unwrap_err(),
        Error::Corrupt { .. }
    ));

    let missing = dir.path().join("missing.mp4");
    assert!(matches!(ff.probe(&missing).unwrap_err(), Error::Io { .. }));
}

#[cfg(unix)]
#[test]
fn non_utf8_and_dash_prefixed_file_names_work() {
    use std::os::unix::ffi::OsStrExt;
    let Some(ff) = ffmpeg_or_skip("non_utf8") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clip = av_clip(dir.path(), "plain.mp4");
    for name in [&b"clip_\xff\xfe.mp4"[..], b"-x.mp4", b"a:b.mp4"] {
        let odd = dir.path().join(std::ffi::OsStr::from_bytes(name));
        std::fs::copy(&clip, &odd).unwrap();
        let info = ff.probe(&odd).unwrap();
        assert_eq!(ff.decode_audio(&info).unwrap().state, AudioState::Present);
        let frames = ff
            .keyframes(
                &info,
                &KeyframeOptions {
                    count: 2,
                    max_side: None,
                    ..KeyframeOptions::default()
                },
            )
            .unwrap();
        assert_eq!(frames.len(), 2);
    }
}

#[test]
fn variable_frame_rate_keyframes_report_real_times() {
    let Some(ff) = ffmpeg_or_skip("vfr") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("vfr.mkv");
    // 25 fps for the first second, then every 5th frame only (5 fps).
    generate(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=96x64:rate=25:duration=3",
            "-vf",
            "select='lt(n\\,25)+not(mod(n\\,5))'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "mpeg4",
        ],
        &clip,
    );
    let info = ff.probe(&clip).unwrap();
    let frames = ff
        .keyframes(
            &info,
            &KeyframeOptions {
                count: 6,
                max_side: None,
                ..KeyframeOptions::default()
            },
        )
        .unwrap();
    assert_eq!(frames.len(), 6);
    let d = info.video_duration_s().unwrap() - 1.0 / info.video.as_ref().unwrap().fps.unwrap();
    for (i, f) in frames.iter().enumerate() {
        let target = (i as f64 + 0.5) * d / 6.0;
        // A kept frame is at or after its target, within one 5 fps frame.
        assert!(
            f.time_s + 1e-3 >= target && f.time_s < target + 0.21,
            "{i}: {} vs {target}",
            f.time_s
        );
    }
}

#[test]
fn huge_resolution_is_capped() {
    let Some(ff) = ffmpeg_or_skip("huge") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("huge.mkv");
    generate(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:size=4000x3000:rate=2:duration=1",
            "-c:v",
            "mpeg4",
        ],
        &clip,
    );
    let info = ff.probe(&clip).unwrap();
    let frames = ff
        .keyframes(
            &info,
            &KeyframeOptions {
                count: 1,
                max_side: Some(1000),
                ..KeyframeOptions::default()
            },
        )
        .unwrap();
    assert_eq!((frames[0].width, frames[0].height), (1000, 750));
    let [r, g, b] = frames[0].pixel(500, 375).unwrap();
    assert!(r > 200 && g < 60 && b < 60, "red: {r} {g} {b}");
}

#[test]
fn absent_ffmpeg_is_a_typed_error() {
    let ff = Ffmpeg::new("/nonexistent/ffmpeg", "/nonexistent/ffprobe");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.mp4");
    std::fs::write(&f, b"data").unwrap();
    let err = ff.probe(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::FfmpegNotFound {
                program: "ffprobe",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("scripts/setup.sh"));
}

#[test]
fn extraction_batch_reports_skips_and_resumes() {
    use mmer_core::media_store::{Level, MediaStore, Presence, StreamKey};
    use mmer_core::{Corpus, Dialogue, LabelSpace, Modality, Split, Utterance};
    use mmer_media::audio_features::{AudioFeatures, AudioFeaturesConfig};
    use mmer_media::extract::{self, ExtractOptions, Outcome, StreamExtractor};
    use mmer_media::inputs::collect;

    let Some(ff) = ffmpeg_or_skip("extraction_batch") else {
        return;
    };
    let crema = shared_data().join("crema-d/1001_DFA_HAP_XX.flv");
    if !crema.exists() {
        eprintln!("extraction_batch: skipped, {} not found", crema.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir(&media).unwrap();
    std::fs::copy(&crema, media.join("happy.flv")).unwrap();
    std::fs::write(media.join("broken.mp4"), b"not a video").unwrap();
    std::fs::write(media.join("empty.wav"), b"").unwrap();
    generate(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=1",
            "-c:v",
            "mpeg4",
        ],
        &media.join("mute.mkv"),
    );
    let inputs = collect(std::slice::from_ref(&media), &LabelSpace::meld()).unwrap();
    let audio = AudioFeatures::new(AudioFeaturesConfig::default()).unwrap();
    let extractors: [&dyn StreamExtractor; 1] = [&audio];
    let opts = ExtractOptions {
        out: dir.path().join("store"),
        jobs: 2,
        force: false,
        shard: None,
    };
    let report = extract::run(&ff, &extractors, &inputs.jobs, &opts, &|_| {}).unwrap();
    let by_id = |id: &str| report.files.iter().find(|f| f.id == id).unwrap().clone();
    assert_eq!(
        (report.ok, report.skipped, report.failed),
        (2, 0, 2),
        "{}",
        report.summary()
    );
    assert_eq!(by_id("happy").presence[&Modality::Audio], Presence::Present);
    assert_eq!(by_id("mute").presence[&Modality::Audio], Presence::Absent);
    assert!(by_id("broken").reason.unwrap().contains("broken.mp4"));
    assert!(by_id("empty").reason.unwrap().contains("empty"));
    report.write(&opts.out).unwrap();
    assert!(
        std::fs::read_to_string(opts.out.join("report.txt"))
            .unwrap()
            .contains("FAILED")
    );

    let store = MediaStore::open(&opts.out).unwrap();
    let rec = store.read("happy").unwrap().unwrap();
    let frames = &rec.streams[&StreamKey::frames(Modality::Audio)];
    // ~2 s at 100 ms windows.
    assert!(
        (15..=25).contains(&frames.features.frames),
        "{}",
        frames.features.frames
    );
    assert!(store.read("mute").unwrap().unwrap().streams.is_empty());

    // A re-run skips what is current and retries only the failures.
    let again = extract::run(&ff, &extractors, &inputs.jobs, &opts, &|_| {}).unwrap();
    assert_eq!((again.ok, again.skipped, again.failed), (0, 2, 2));
    assert_eq!(
        again
            .files
            .iter()
            .find(|f| f.id == "happy")
            .unwrap()
            .outcome,
        Outcome::Skipped
    );
    // Another extractor configuration makes every record stale.
    let raw = AudioFeatures::new(AudioFeaturesConfig {
        window_frames: 1,
        ..Default::default()
    })
    .unwrap();
    let third = extract::run(
        &ff,
        &[&raw as &dyn StreamExtractor],
        &inputs.jobs,
        &opts,
        &|_| {},
    )
    .unwrap();
    assert_eq!(third.ok, 2);

    // The trainer's view: features attached by utterance id.
    let mut corpus = Corpus {
        name: "c".into(),
        labels: LabelSpace::meld(),
        splits: [(
            Split::Test,
            vec![Dialogue {
                id: "d".into(),
                utterances: vec![
                    Utterance::new("happy", 0, "A"),
                    Utterance::new("mute", 1, "B"),
                ],
            }],
        )]
        .into(),
    };
    let attached = MediaStore::open(&opts.out)
        .unwrap()
        .attach(&mut corpus, Level::Frames)
        .unwrap();
    assert_eq!(attached.matched, 2);
    let utts = &corpus.splits[&Split::Test][0].utterances;
    assert!(
        utts[0].features[&Modality::Audio].frames > 150,
        "raw 10 ms frames"
    );
    assert!(
        !utts[1].features.contains_key(&Modality::Audio),
        "no sound stays missing"
    );
}

/// `mmer bench extract --picture`: the picture is looped for the whole clip.
/// A 1 s generated FLV and the real CREMA-D FLV (on which ffmpeg 5.1's
/// `-stream_loop -1` silently stopped after 2.04 s) must both fill the clip.
#[test]
fn bench_clip_loops_a_short_picture_to_full_length() {
    let Some(ff) = ffmpeg_or_skip("bench_clip") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let flv = dir.path().join("picture.flv");
    generate(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=25:duration=1",
            "-c:v",
            "flv1",
        ],
        &flv,
    );
    let wav = dir.path().join("speech.wav");
    generate(
        &["-f", "lavfi", "-i", "sine=frequency=220:duration=1"],
        &wav,
    );
    let mut pictures = vec![flv];
    let crema = shared_data().join("crema-d/1001_DFA_NEU_XX.flv");
    if crema.is_file() {
        pictures.push(crema);
    }
    for picture in pictures {
        let spec = mmer_media::bench::ClipSpec {
            seconds: 4.0,
            width: 160,
            height: 96,
            fps: 10,
            keyframes: 4,
            picture: Some(picture.clone()),
        };
        let out = dir.path().join("clip.mp4");
        mmer_media::bench::make_clip(&ff, &spec, std::slice::from_ref(&wav), &out)
            .unwrap_or_else(|e| panic!("{}: {e}", picture.display()));
        let info = ff.probe(&out).expect("clip probes");
        let video = info.video_duration_s().expect("video duration");
        assert!(video > 3.9, "{}: {video} s of video", picture.display());
    }
}

/// 1.52 s of testsrc, 1 s of red, 1.48 s of a Mandelbrot zoom: two hard cuts.
fn clip_with_cuts(dir: &Path) -> PathBuf {
    let out = dir.join("cuts.mp4");
    generate(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=25:duration=1.52[a];\
             color=c=red:size=160x120:rate=25:duration=1[b];\
             mandelbrot=size=160x120:rate=25,trim=duration=1.48[c];\
             [a][b][c]concat=n=3:v=1:a=0",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
        &out,
    );
    out
}

#[test]
fn scene_keyframes_land_on_the_cuts_and_are_topped_up() {
    let Some(ff) = ffmpeg_or_skip("scene_keyframes") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = clip_with_cuts(dir.path());
    let info = ff.probe(&clip).expect("probes");
    let keyframes = |count| {
        let opts = KeyframeOptions {
            count,
            mode: mmer_media::KeyframeMode::scene(),
            ..KeyframeOptions::default()
        };
        let frames = ff.keyframes(&info, &opts).expect("decodes");
        frames
            .iter()
            .map(|f| (f.time_s, f.pixel(80, 60)))
            .collect::<Vec<_>>()
    };
    let is_cut = |t: f64| (t - 1.52).abs() < 0.02 || (t - 2.52).abs() < 0.02;
    // k = 2: exactly the two cuts; the second one shows the red card.
    let two = keyframes(2);
    assert_eq!(two.len(), 2, "{two:?}");
    assert!(two.iter().all(|&(t, _)| is_cut(t)), "{two:?}");
    let [r, g, b] = two[0].1.expect("pixel inside");
    assert!(
        r > 200 && g < 60 && b < 60,
        "first cut is the red card: {two:?}"
    );
    // k = 5: both cuts plus three uniform frames, in time order.
    let five = keyframes(5);
    assert_eq!(five.len(), 5, "{five:?}");
    assert!(five.windows(2).all(|w| w[0].0 < w[1].0), "{five:?}");
    assert_eq!(
        five.iter().filter(|&&(t, _)| is_cut(t)).count(),
        2,
        "{five:?}"
    );
    // Uniform mode does not look for cuts: slice centres.
    let uniform = ff
        .keyframes(
            &info,
            &KeyframeOptions {
                count: 2,
                ..KeyframeOptions::default()
            },
        )
        .expect("decodes");
    let times: Vec<f64> = uniform.iter().map(|f| f.time_s).collect();
    assert!(times.iter().all(|&t| !is_cut(t)), "{times:?}");
}

/// A transcript that does not match its media: each bad turn fails with its
/// file, line and id, and the good turn is still extracted.
#[test]
fn conversation_media_mismatches_fail_per_turn_and_the_batch_continues() {
    use mmer_core::LabelSpace;
    use mmer_media::audio_features::{AudioFeatures, AudioFeaturesConfig};
    use mmer_media::extract::{self, ExtractOptions, Outcome, StreamExtractor};

    let Some(ff) = ffmpeg_or_skip("conversation_mismatch") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    generate(
        &["-f", "lavfi", "-i", "sine=frequency=300:duration=1"],
        &dir.path().join("t0.wav"),
    );
    let conv = dir.path().join("talk.jsonl");
    std::fs::write(
        &conv,
        [
            r#"{"dialogue": "talk", "turn": 0, "speaker": "A", "text": "hello", "audio": "t0.wav"}"#,
            r#"{"dialogue": "talk", "turn": 1, "speaker": "B", "text": "hi", "audio": "t1.wav"}"#,
            r#"{"dialogue": "talk", "turn": 2, "speaker": "A", "text": "again", "audio": "t0.wav"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let inputs = mmer_media::inputs::collect(&[conv], &LabelSpace::meld()).unwrap();
    let audio = AudioFeatures::new(AudioFeaturesConfig::default()).unwrap();
    let opts = ExtractOptions {
        out: dir.path().join("store"),
        jobs: 2,
        force: false,
        shard: None,
    };
    let report = extract::run(
        &ff,
        &[&audio as &dyn StreamExtractor],
        &inputs.jobs,
        &opts,
        &|_| {},
    )
    .unwrap();
    assert_eq!((report.ok, report.failed), (1, 2), "{}", report.summary());
    let reason = |id: &str| {
        let f = report.files.iter().find(|f| f.id == id).unwrap();
        assert_eq!(f.outcome, Outcome::Failed, "{id}");
        f.reason.clone().unwrap()
    };
    let r = reason("talk_utt1");
    assert!(
        r.contains("talk.jsonl line 2") && r.contains("does not exist"),
        "{r}"
    );
    let r = reason("talk_utt2");
    assert!(r.contains("line 3") && r.contains("talk_utt0"), "{r}");
}

/// A canonical 16-bit mono 16 kHz WAV of `frames` samples of a tone whose
/// header declares `declared` data bytes, with `edit` applied to its bytes.
fn wav_bytes(frames: usize, declared: u32, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let data: Vec<u8> = (0..frames)
        .flat_map(|i| (((i as f32 * 0.17).sin() * 8000.0) as i16).to_le_bytes())
        .collect();
    let mut out = b"RIFF".to_vec();
    out.extend((36 + data.len() as u32).to_le_bytes());
    out.extend(b"WAVEfmt ");
    out.extend(16u32.to_le_bytes());
    for (v, width) in [(1u32, 2), (1, 2), (16_000, 4), (32_000, 4), (2, 2), (16, 2)] {
        out.extend(&v.to_le_bytes()[..width]);
    }
    out.extend(b"data");
    out.extend(declared.to_le_bytes());
    out.extend(data);
    edit(&mut out);
    out
}

/// Audio-only extraction (what `mmer extract --no-visual` runs) of `jobs`
/// into a store under `dir`.
fn extract_audio(
    ff: &Ffmpeg,
    dir: &Path,
    jobs: &[mmer_media::inputs::Job],
) -> mmer_media::extract::RunReport {
    use mmer_media::audio_features::{AudioFeatures, AudioFeaturesConfig};
    use mmer_media::extract::{self, ExtractOptions, StreamExtractor};
    let audio = AudioFeatures::new(AudioFeaturesConfig::default()).unwrap();
    let opts = ExtractOptions {
        out: dir.join("store"),
        jobs: 2,
        force: true,
        shard: None,
    };
    extract::run(ff, &[&audio as &dyn StreamExtractor], jobs, &opts, &|_| {}).unwrap()
}

fn job(id: &str, path: &Path) -> mmer_media::inputs::Job {
    mmer_media::inputs::Job {
        id: id.into(),
        path: path.to_path_buf(),
        ..Default::default()
    }
}

/// The reason `id` failed in `report` (panics if it did not fail).
fn failure(report: &mmer_media::extract::RunReport, id: &str) -> String {
    let f = report.files.iter().find(|f| f.id == id).unwrap();
    assert_eq!(
        f.outcome,
        mmer_media::extract::Outcome::Failed,
        "{id}: {}",
        report.summary()
    );
    f.reason.clone().unwrap()
}

/// Issue "strict inputs": WAV headers that ffmpeg would read at the wrong
/// length (mono 16-bit data under 7 bits per sample: twice as long; under
/// 2 channels with 2-byte frames: half as long), a header without samples
/// (was `ok` / audio `silent`) and a cut data chunk fail before ffmpeg
/// runs, naming the file.
#[test]
fn hostile_wav_headers_fail_naming_the_file() {
    let Some(ff) = ffmpeg_or_skip("hostile_wav") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "seven_bit",
            wav_bytes(800, 1600, |b| b[34] = 7),
            "7 bits per sample",
        ),
        (
            "block_align",
            wav_bytes(800, 1600, |b| b[22] = 2),
            "block align",
        ),
        (
            "header_only",
            wav_bytes(0, 1600, |_| {}),
            "no audio samples",
        ),
        ("empty_data", wav_bytes(0, 0, |_| {}), "no audio samples"),
        (
            "truncated",
            wav_bytes(400, 1600, |_| {}),
            "truncated WAV file",
        ),
    ];
    let mut jobs = Vec::new();
    for (id, bytes, _) in &cases {
        let path = dir.path().join(format!("{id}.wav"));
        std::fs::write(&path, bytes).unwrap();
        let err = ff.probe(&path).unwrap_err();
        assert!(matches!(err, Error::Wav(_)), "{id}: {err}");
        jobs.push(job(id, &path));
    }
    let good = dir.path().join("good.wav");
    std::fs::write(&good, wav_bytes(8000, 16_000, |_| {})).unwrap();
    jobs.push(job("good", &good));
    let report = extract_audio(&ff, dir.path(), &jobs);
    assert_eq!((report.ok, report.failed), (1, 5), "{}", report.summary());
    for (id, _, want) in &cases {
        let reason = failure(&report, id);
        assert!(
            reason.contains(&format!("{id}.wav")) && reason.contains(want),
            "{id}: {reason}"
        );
    }
}

/// Issue "strict inputs": a cut FLV decodes without complaint up to the
/// cut while ffprobe reports the header's duration; with `--no-visual` it
/// was reported `ok`. Now it fails with both durations and the file.
#[test]
fn truncated_containers_fail_with_declared_and_decoded_durations() {
    let Some(ff) = ffmpeg_or_skip("truncated_flv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("tone.flv");
    generate(
        &["-f", "lavfi", "-i", "sine=frequency=300:duration=4"],
        &generated,
    );
    let mut whole = vec![generated];
    let crema = shared_data().join("crema-d/1001_DFA_HAP_XX.flv");
    if crema.is_file() {
        whole.push(crema);
    } else {
        eprintln!(
            "truncated_flv: CREMA-D part skipped, {} not found",
            crema.display()
        );
    }
    let mut jobs = Vec::new();
    for (i, full) in whole.iter().enumerate() {
        let bytes = std::fs::read(full).unwrap();
        let cut = dir.path().join(format!("cut{i}.flv"));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let info = ff.probe(&cut).expect("the cut file still probes");
        let declared = info.duration_s.expect("the header's duration");
        match ff.decode_audio(&info).unwrap_err() {
            Error::Truncated {
                path,
                expected_s,
                decoded_s,
                packets_end_s,
            } => {
                assert_eq!(path, cut);
                assert!((expected_s - declared).abs() < 1e-9, "{expected_s}");
                assert!(decoded_s < 0.6 * declared, "{decoded_s} of {declared}");
                assert!(packets_end_s.unwrap() < 0.6 * declared);
            }
            other => panic!("{}: expected Truncated, got {other}", cut.display()),
        }
        // The whole file is still fine.
        let info = ff.probe(full).unwrap();
        assert_eq!(ff.decode_audio(&info).unwrap().state, AudioState::Present);
        jobs.push(job(&format!("cut{i}"), &cut));
        jobs.push(job(&format!("whole{i}"), full));
    }
    let report = extract_audio(&ff, dir.path(), &jobs);
    assert_eq!(report.failed, whole.len(), "{}", report.summary());
    for i in 0..whole.len() {
        let reason = failure(&report, &format!("cut{i}"));
        assert!(
            reason.contains(&format!("cut{i}.flv"))
                && reason.contains("truncated or corrupt")
                && reason.contains("should run to")
                && reason.contains("decodes only to"),
            "{reason}"
        );
    }
}

/// An audio track that ends before the video is not a truncated file: the
/// packets of the video reach the declared end.
#[test]
fn audio_shorter_than_video_is_not_truncation() {
    let Some(ff) = ffmpeg_or_skip("short_audio") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, codecs) in [
        ("short.flv", ["-c:v", "flv1", "-c:a", "libmp3lame"]),
        ("short.mkv", ["-c:v", "mpeg4", "-c:a", "pcm_s16le"]),
    ] {
        let clip = dir.path().join(name);
        let mut args = vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:duration=1",
        ];
        args.extend(codecs);
        generate(&args, &clip);
        let info = ff.probe(&clip).unwrap();
        assert!(info.duration_s.unwrap() > 2.9, "{name}: {info:?}");
        let audio = ff.decode_audio(&info).unwrap();
        assert_eq!(audio.state, AudioState::Present, "{name}");
        assert!((audio.duration_s() - 1.0).abs() < 0.1, "{name}");
    }
}

/// A VBR MP3 without a Xing header: ffprobe estimates its duration from the
/// first frames' bitrate (here more than twice the real one); the probe
/// measures it from the packets instead.
#[test]
fn estimated_durations_are_measured() {
    let Some(ff) = ffmpeg_or_skip("vbr_mp3") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mp3 = dir.path().join("vbr.mp3");
    generate(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=200:duration=3,volume=0.1[a];anoisesrc=d=3:a=0.5[b];[a][b]concat=n=2:v=0:a=1",
            "-c:a",
            "libmp3lame",
            "-q:a",
            "0",
            "-write_xing",
            "0",
        ],
        &mp3,
    );
    let info = ff.probe(&mp3).unwrap();
    let audio = ff.decode_audio(&info).unwrap();
    let d = info.duration_s.unwrap();
    assert!(
        (d - audio.duration_s()).abs() < 0.1,
        "probed {d} s, decoded {} s",
        audio.duration_s()
    );
}

/// Timed turns of a conversation file: a range past the end of the
/// recording, a repeated range and a range in a cut recording fail naming
/// the conversation file, line, utterance, dialogue and turn; the turns in
/// range are extracted.
#[test]
fn timed_turn_failures_name_file_line_and_turn() {
    use mmer_core::LabelSpace;

    let Some(ff) = ffmpeg_or_skip("timed_turns") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    generate(
        &["-f", "lavfi", "-i", "sine=frequency=300:duration=2"],
        &dir.path().join("talk.wav"),
    );
    generate(
        &["-f", "lavfi", "-i", "sine=frequency=300:duration=4"],
        &dir.path().join("long.flv"),
    );
    let bytes = std::fs::read(dir.path().join("long.flv")).unwrap();
    std::fs::write(dir.path().join("cut.flv"), &bytes[..bytes.len() / 2]).unwrap();
    let turn = |t: u32, clip: &str, start: f64, end: f64| {
        format!(
            r#"{{"dialogue": "talk", "turn": {t}, "speaker": "A", "text": "t{t}", "audio": "{clip}", "start": {start}, "end": {end}}}"#
        )
    };
    let conv = dir.path().join("talk.jsonl");
    std::fs::write(
        &conv,
        [
            turn(0, "talk.wav", 0.0, 1.0),
            turn(1, "talk.wav", 1.0, 2.0),
            turn(2, "talk.wav", 1.5, 5.0),
            turn(3, "talk.wav", 0.0, 1.0),
            turn(4, "cut.flv", 0.5, 1.0),
            turn(5, "cut.flv", 3.0, 3.9),
        ]
        .join("\n"),
    )
    .unwrap();
    let inputs = mmer_media::inputs::collect(&[conv], &LabelSpace::meld()).unwrap();
    let report = extract_audio(&ff, dir.path(), &inputs.jobs);
    assert_eq!((report.ok, report.failed), (3, 3), "{}", report.summary());
    for (line, turn, want) in [
        (3, 2, "ends after the clip"),
        (4, 3, "same time range"),
        (6, 5, "truncated or corrupt"),
    ] {
        let reason = failure(&report, &format!("talk_utt{turn}"));
        let at = format!(
            "talk.jsonl line {line}, utterance talk_utt{turn} (dialogue talk, turn {turn})"
        );
        assert!(reason.contains(&at) && reason.contains(want), "{reason}");
    }
    let turn4 = report.files.iter().find(|f| f.id == "talk_utt4").unwrap();
    assert!((turn4.duration_s.unwrap() - 0.5).abs() < 1e-6, "{turn4:?}");
}

/// A damaged record left by an earlier run fails the index rebuild, not
/// the run: every file's report still comes back (and `mmer extract`
/// writes it before failing), naming the damaged record.
#[test]
fn a_damaged_record_is_reported_without_losing_the_run() {
    let Some(ff) = ffmpeg_or_skip("damaged_record") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tone: Vec<u8> = (0..16_000u32)
        .flat_map(|i| (((i as f32 * 0.05).sin() * 8000.0) as i16).to_le_bytes())
        .collect();
    let wav = wav_bytes(16_000, 32_000, |b| b[44..].copy_from_slice(&tone));
    let (a, b) = (dir.path().join("a.wav"), dir.path().join("b.wav"));
    std::fs::write(&a, &wav).unwrap();
    std::fs::write(&b, &wav).unwrap();
    let first = extract_audio(&ff, dir.path(), &[job("a", &a)]);
    assert_eq!(first.ok, 1, "{}", first.summary());
    assert!(first.index_error.is_none());
    let records = dir.path().join("store/utterances");
    let record = std::fs::read_dir(&records)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&record).unwrap();
    let n = bytes.len();
    bytes[n - 8..].fill(0xFF);
    std::fs::write(&record, bytes).unwrap();

    let second = extract_audio(&ff, dir.path(), &[job("b", &b)]);
    assert_eq!(second.ok, 1, "{}", second.summary());
    let reason = second
        .index_error
        .clone()
        .expect("the damaged record is reported");
    let name = record.file_name().unwrap().to_string_lossy().into_owned();
    assert!(reason.contains(&name), "{reason}");
    assert!(
        second.summary().contains("INDEX NOT REBUILT"),
        "{}",
        second.summary()
    );
}
