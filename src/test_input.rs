//! Random inputs for the tests that feed a decoder or parser thousands of
//! made-up texts to show it never panics: each text is a random run of
//! fragments chosen to hit the grammar's edges.

/// `count` texts of up to `max_pieces - 1` fragments each, drawn by a
/// xorshift64 generator from `seed` (deterministic, so a failure repeats).
pub fn fragment_runs<'a>(
    fragments: &'a [&'a str],
    max_pieces: u64,
    count: usize,
    seed: u64,
) -> impl Iterator<Item = String> + 'a {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count).map(move |_| {
        let mut text = String::new();
        for _ in 0..next() % max_pieces {
            let index = usize::try_from(next() % fragments.len() as u64).unwrap_or(0);
            text.push_str(fragments[index]);
        }
        text
    })
}
