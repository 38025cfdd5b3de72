//! The analytic model of `pex-scale.md` §3.2, to check the simulation against.
//!
//! BEP 11 lets a node name only its live connections, at most 50 per message and a capped
//! first message, so an address travels one hop from its owner's neighbours. In a random
//! overlay of degree `d` where every first message names `min(d − 1, c0)` others, one
//! interval teaches a node about
//!
//! K₁ ≈ N·(1 − e^(−d·min(d−1, c0)/N))
//!
//! peers (2,173 of 10⁴ at d = 50, c0 = 50). Under churn, a fraction `r` of a node's
//! connections is replaced per interval and sessions last `L` on average; the known live
//! fraction follows df/dt = a(1 − f) − f/L with a ≈ r·d·(d + min(d−1, c0))/N.

/// §3.2's K₁/N: the share of the swarm named by the neighbours' first messages.
pub fn reference_first_interval(n: f64, d: f64, c0: f64) -> f64 {
    1.0 - (-d * (d - 1.0).min(c0) / n).exp()
}

/// What a node of a static overlay knows once every neighbour's first message arrived, as
/// a share of the other `n − 1`: its `d` neighbours, plus the distinct names among the
/// `d·min(d − 1, c0)` the neighbours send (drawn from the others; a neighbour is named only
/// through a triangle, rare in a random overlay). §3.2's K₁ leaves the neighbours out, which
/// at d = 50 is 1.8 % of the value at N = 10⁴ and 2 % at 10⁵.
pub fn first_interval_fraction(n: f64, d: f64, c0: f64) -> f64 {
    let others = n - 1.0;
    let named = 1.0 - (-d * (d - 1.0).min(c0) / others).exp();
    d / others + (1.0 - d / others) * named
}

/// The static overlay's known fraction at each protocol minute `0..=minutes`: its `d`
/// neighbours at the start, K₁/N from the first minute on (nothing changes afterwards, so
/// no delta names anyone new).
pub fn static_curve(n: f64, d: f64, c0: f64, minutes: u32) -> Vec<f64> {
    let k1 = first_interval_fraction(n, d, c0);
    (0..=minutes)
        .map(|m| if m == 0 { d / (n - 1.0) } else { k1 })
        .collect()
}

/// The churn model: the learning rate per minute `a` for a replaced share `r` per minute.
pub fn learning_rate(n: f64, d: f64, c0: f64, r: f64) -> f64 {
    r * d * (d + (d - 1.0).min(c0)) / n
}

/// The fixed point f* = aL/(1 + aL).
pub fn steady_state(a: f64, session_minutes: f64) -> f64 {
    a * session_minutes / (1.0 + a * session_minutes)
}

/// The churn curve from `f0`, one Euler step of a minute per entry (the time constant is
/// tens of minutes, so a minute's step is fine).
pub fn churn_curve(f0: f64, a: f64, session_minutes: f64, minutes: u32) -> Vec<f64> {
    let mut f = f0;
    let mut out = vec![f];
    for _ in 0..minutes {
        f += a * (1.0 - f) - f / session_minutes;
        out.push(f.clamp(0.0, 1.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_interval_matches_the_reference_table() {
        // pex-scale.md §3.2: 2,173 at 10⁴, 2,420 at 10⁵ and 2,447 at 10⁶ (d = c0 = 50).
        for (n, known) in [(1e4, 2_173.0), (1e5, 2_420.0), (1e6, 2_447.0)] {
            let k = n * reference_first_interval(n, 50.0, 50.0);
            assert!((k - known).abs() < 1.0, "{n}: {k}");
        }
    }

    #[test]
    fn neighbours_add_under_three_percent_at_the_reference_sizes() {
        for n in [1e4, 1e5] {
            let (with, without) = (
                first_interval_fraction(n, 50.0, 50.0),
                reference_first_interval(n, 50.0, 50.0),
            );
            assert!(with > without && (with - without) / without < 0.03, "{n}");
        }
    }

    #[test]
    fn steady_state_matches_the_reference_table() {
        // §3.2's table: N = 10⁴, r = 0.02, L = 60 gives f* = 0.37; N = 10⁵, r = 0.10,
        // L = 180 gives 0.47.
        let a = learning_rate(1e4, 50.0, 50.0, 0.02);
        assert!((steady_state(a, 60.0) - 0.37).abs() < 0.01);
        let a = learning_rate(1e5, 50.0, 50.0, 0.10);
        assert!((steady_state(a, 180.0) - 0.47).abs() < 0.01);
    }

    #[test]
    fn churn_curve_approaches_its_fixed_point() {
        let a = learning_rate(1e4, 50.0, 50.0, 0.02);
        let curve = churn_curve(0.0, a, 60.0, 600);
        let last = curve.last().copied().unwrap_or_default();
        assert!((last - steady_state(a, 60.0)).abs() < 1e-3, "{last}");
        assert!(curve.windows(2).all(|w| w[1] >= w[0]));
    }
}
