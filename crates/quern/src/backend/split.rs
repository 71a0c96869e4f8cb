//! The claim split across queues: the one rule every backend (and the worker's claim
//! planner) follows, so "which queue does the next job come from" has one answer.
//!
//! - A queue named more than once counts once, with its first weight.
//! - A queue of weight 0 is never claimed from (listing it with weight 0 is a way to leave
//!   it out without editing the list), so a claim whose queues all weigh 0 takes nothing.
//! - Each job of a claim goes to a queue drawn with probability proportional to its weight
//!   among the queues still *open*; a queue that comes back with fewer jobs than drawn for it
//!   has run dry and is closed, and its share is drawn again among the others.

use super::QueueWeight;

/// The queues a claim may take from, deduplicated and without weight-0 queues, in the order
/// they were listed. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimSplit {
    queues: Vec<QueueWeight>,
}

impl ClaimSplit {
    /// Applies the rule's first two points to a claim's queue list.
    pub fn new(listed: &[QueueWeight]) -> Self {
        let mut queues: Vec<QueueWeight> = Vec::with_capacity(listed.len());
        for q in listed {
            if !queues.iter().any(|k| k.queue == q.queue) && listed_first(listed, q).weight > 0 {
                queues.push(q.clone());
            }
        }
        ClaimSplit { queues }
    }

    /// The queues that may be claimed from.
    pub fn queues(&self) -> &[QueueWeight] {
        &self.queues
    }

    /// Whether no queue may be claimed from.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Draws `n` jobs among the open queues (indexes into [`ClaimSplit::queues`]); returns
    /// how many jobs each of `queues()` gets (0 for closed ones). `unit` yields numbers in
    /// [0, 1) (`fastrand::f64` in production, fixed values in tests).
    pub fn draw(&self, open: &[usize], n: usize, mut unit: impl FnMut() -> f64) -> Vec<usize> {
        let mut alloc = vec![0usize; self.queues.len()];
        let total: u64 = open.iter().map(|i| u64::from(self.queues[*i].weight)).sum();
        if total == 0 {
            return alloc;
        }
        for _ in 0..n {
            let mut ticket = ((unit() * total as f64) as u64).min(total - 1);
            for i in open {
                let w = u64::from(self.queues[*i].weight);
                if ticket < w {
                    alloc[*i] += 1;
                    break;
                }
                ticket -= w;
            }
        }
        alloc
    }
}

/// Orders `groups` of queues by a weighted draw without replacement, a group weighing the
/// sum of its queues' weights: the order the worker makes separate claims in, so no queue
/// always goes first. `unit` yields numbers in [0, 1).
pub fn weighted_order<T>(
    mut groups: Vec<T>,
    queues: impl Fn(&T) -> &[QueueWeight],
    mut unit: impl FnMut() -> f64,
) -> Vec<T> {
    let mut out = Vec::with_capacity(groups.len());
    while !groups.is_empty() {
        let weights: Vec<u64> = groups
            .iter()
            .map(|g| queues(g).iter().map(|q| u64::from(q.weight)).sum())
            .collect();
        let total: u64 = weights.iter().sum::<u64>().max(1);
        let mut pick = ((unit() * total as f64) as u64).min(total - 1);
        let mut i = 0;
        while i + 1 < weights.len() && pick >= weights[i] {
            pick -= weights[i];
            i += 1;
        }
        out.push(groups.remove(i));
    }
    out
}

/// The first entry naming `q`'s queue (its weight is the one that counts).
fn listed_first<'a>(listed: &'a [QueueWeight], q: &'a QueueWeight) -> &'a QueueWeight {
    listed.iter().find(|k| k.queue == q.queue).unwrap_or(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qw(q: &str, w: u32) -> QueueWeight {
        QueueWeight::new(q, w)
    }

    #[test]
    fn weight_zero_and_repeats_are_left_out() {
        let s = ClaimSplit::new(&[qw("a", 2), qw("z", 0), qw("a", 9), qw("b", 1)]);
        assert_eq!(s.queues(), &[qw("a", 2), qw("b", 1)]);
        // A queue first listed with weight 0 stays out even if listed again with a weight.
        let s = ClaimSplit::new(&[qw("z", 0), qw("z", 5)]);
        assert!(s.is_empty());
        assert!(ClaimSplit::new(&[qw("x", 0), qw("y", 0)]).is_empty());
    }

    #[test]
    fn draws_follow_the_weights_among_open_queues() {
        let s = ClaimSplit::new(&[qw("a", 3), qw("b", 1), qw("c", 4)]);
        // unit 0.0 always hits the first open queue, 0.99 the last.
        assert_eq!(s.draw(&[0, 1, 2], 5, || 0.0), vec![5, 0, 0]);
        assert_eq!(s.draw(&[0, 1, 2], 5, || 0.99), vec![0, 0, 5]);
        // With `c` closed, 0.99 lands in `b` (tickets 3 of 0..4).
        assert_eq!(s.draw(&[0, 1], 2, || 0.99), vec![0, 2, 0]);
        // A weighted pseudo-random spread.
        let mut x = 0.0f64;
        let got = s.draw(&[0, 1, 2], 8000, || {
            x = (x + 0.618_033_988_75) % 1.0;
            x
        });
        assert!(
            (2800..3200).contains(&got[0]) && (800..1200).contains(&got[1]),
            "{got:?}"
        );
        assert_eq!(s.draw(&[], 3, || 0.5), vec![0, 0, 0]);
    }

    #[test]
    fn order_draws_groups_by_weight() {
        let groups = vec![vec![qw("small", 1)], vec![qw("big", 9)]];
        let first = |u: f64| {
            weighted_order(groups.clone(), |g| g.as_slice(), || u)[0][0]
                .queue
                .clone()
        };
        assert_eq!(first(0.05), "small");
        assert_eq!(first(0.5), "big");
    }
}
