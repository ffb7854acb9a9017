//! Sentence-transformers pooling: masked mean over tokens, then L2
//! normalisation.
//!
//! `mean = Σ_t m_t·h_t / max(Σ_t m_t, 1e-9)` — sentence-transformers
//! `models/Pooling.py` (`pooling_mode_mean_tokens`), and
//! `x / max(‖x‖₂, 1e-12)` — `models/Normalize.py` (`torch.nn.functional.normalize`).
//! Both modules are listed in the `modules.json` of all-MiniLM-L6-v2 and
//! all-mpnet-base-v2.

use candle_core::{D, Result, Tensor};

/// Mean of the token states where the attention mask is 1.
///
/// # Shapes
/// - `token_states`: `[batch, seq_len, d_model]`
/// - `attention_mask`: `[batch, seq_len]`, 1 for tokens and 0 for padding (any dtype)
/// - returns `[batch, d_model]`
///
/// # Errors
/// Rank or shape mismatches.
pub fn mean_pool(token_states: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
    let (batch, seq_len, _d) = token_states.dims3()?;
    let (mask_batch, mask_len) = attention_mask.dims2()?;
    if (mask_batch, mask_len) != (batch, seq_len) {
        candle_core::bail!(
            "attention_mask has shape [{mask_batch}, {mask_len}], token states [{batch}, {seq_len}, _]"
        );
    }
    let mask = attention_mask
        .to_dtype(token_states.dtype())?
        .unsqueeze(D::Minus1)?; // [b, s, 1]
    let summed = token_states.broadcast_mul(&mask)?.sum(1)?; // [b, d]
    let counts = mask.sum(1)?.clamp(1e-9, f64::INFINITY)?; // [b, 1]
    summed.broadcast_div(&counts)
}

/// Each row divided by its Euclidean norm (rows of zeros stay zero).
///
/// # Shapes
/// - `xs`: `[batch, d]` → `[batch, d]`
///
/// # Errors
/// Rank mismatches.
pub fn l2_normalize(xs: &Tensor) -> Result<Tensor> {
    xs.dims2()?;
    let norms = xs
        .sqr()?
        .sum_keepdim(1)?
        .sqrt()?
        .clamp(1e-12, f64::INFINITY)?; // [b, 1]
    xs.broadcast_div(&norms)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn mean_ignores_masked_tokens() -> Result<()> {
        let device = Device::Cpu;
        // Two sequences of 3 tokens, width 2; the second has one padded token
        // whose (huge) state must not leak into the mean.
        let states = Tensor::new(
            &[
                [[1f32, 2.], [3., 4.], [5., 6.]],
                [[2., 0.], [4., 2.], [1000., -1000.]],
            ],
            &device,
        )?;
        let mask = Tensor::new(&[[1u32, 1, 1], [1, 1, 0]], &device)?;
        let pooled = mean_pool(&states, &mask)?.to_vec2::<f32>()?;
        assert_eq!(pooled, vec![vec![3., 4.], vec![3., 1.]]);
        Ok(())
    }

    #[test]
    fn all_masked_row_gives_zeros_not_nan() -> Result<()> {
        let states = Tensor::ones((1, 2, 3), candle_core::DType::F32, &Device::Cpu)?;
        let mask = Tensor::zeros((1, 2), candle_core::DType::U32, &Device::Cpu)?;
        let pooled = mean_pool(&states, &mask)?.to_vec2::<f32>()?;
        assert_eq!(pooled, vec![vec![0., 0., 0.]]);
        assert_eq!(
            l2_normalize(&mean_pool(&states, &mask)?)?.to_vec2::<f32>()?,
            pooled
        );
        Ok(())
    }

    #[test]
    fn normalised_rows_have_unit_norm() -> Result<()> {
        let xs = Tensor::new(&[[3f32, 4.], [0., -2.]], &Device::Cpu)?;
        let unit = l2_normalize(&xs)?.to_vec2::<f32>()?;
        assert_eq!(unit, vec![vec![0.6, 0.8], vec![0., -1.]]);
        Ok(())
    }

    #[test]
    fn shape_mismatch_is_an_error() -> Result<()> {
        let states = Tensor::ones((2, 3, 4), candle_core::DType::F32, &Device::Cpu)?;
        let mask = Tensor::ones((2, 2), candle_core::DType::U32, &Device::Cpu)?;
        assert!(mean_pool(&states, &mask).is_err());
        Ok(())
    }
}
