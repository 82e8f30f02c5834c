//! Delta debugging (Zeller and Hildebrandt's ddmin, by removing
//! complements): the one minimiser behind `shrink` (a schedule's choices
//! that are not the default) and `reduce` (a scenario's lines).

/// Remove chunks of `items` while `test` of the items kept still holds:
/// halves first, then chunks twice as small each time no chunk can go; after
/// a removal, one chunk fewer. Ends when no single item can go, when fewer
/// than `least` items are left, or when `stop()` says so. `test` is never
/// asked about `items` itself: the caller knows it holds.
pub fn ddmin<T: Clone>(
    items: Vec<T>,
    least: usize,
    stop: impl Fn() -> bool,
    mut test: impl FnMut(&[T]) -> bool,
) -> Vec<T> {
    let mut current = items;
    let mut chunks = 2usize;
    while current.len() >= least.max(1) && !stop() {
        let size = current.len().div_ceil(chunks.min(current.len()));
        let mut reduced = false;
        for start in (0..current.len()).step_by(size) {
            let end = (start + size).min(current.len());
            let candidate: Vec<T> = current[..start].iter().chain(&current[end..]).cloned().collect();
            if test(&candidate) {
                current = candidate;
                chunks = (chunks - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if chunks >= current.len() {
                break;
            }
            chunks = (chunks * 2).min(current.len());
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::ddmin;

    #[test]
    fn it_keeps_just_what_the_test_needs() {
        let items: Vec<u32> = (0..40).collect();
        let mut asked = 0;
        let kept = ddmin(
            items,
            1,
            || false,
            |kept| {
                asked += 1;
                kept.contains(&7) && kept.contains(&31)
            },
        );
        assert_eq!(kept, vec![7, 31]);
        assert!(asked < 40, "{asked} tests");
    }

    #[test]
    fn it_stops_at_least_items_and_when_told() {
        let all = |_: &[u32]| true;
        assert_eq!(ddmin(vec![1, 2, 3, 4], 1, || false, all), Vec::<u32>::new());
        assert_eq!(ddmin(vec![1, 2, 3, 4], 2, || false, all).len(), 1);
        assert_eq!(ddmin(vec![1, 2, 3, 4], 1, || true, all), vec![1, 2, 3, 4]);
    }
}
