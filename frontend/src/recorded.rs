//! The recorded source: a trace file in JSON lines (as `crosstalk simulate --format jsonl` or
//! the page's own export writes it), dropped on the page, picked with a file field, or loaded
//! from an address.

use crate::trace_index::TraceIndex;
use shared::protocol::Trace;

/// The largest trace file the page reads, in bytes. A 30 s run is about 2 MB; this leaves room
/// for long runs while keeping a stray multi-gigabyte file from freezing the tab.
pub const TRACE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Reads a trace file: the whole trace, indexed, and its hash; or what is wrong with it, in words
/// for the status line.
pub fn read_trace(text: &str) -> Result<(TraceIndex, String), String> {
    if text.len() > TRACE_BYTES_MAX {
        return Err(format!(
            "the file is {} MB; the page reads traces up to {} MB",
            text.len() / (1024 * 1024),
            TRACE_BYTES_MAX / (1024 * 1024)
        ));
    }
    let trace = Trace::from_jsonl(text).map_err(|err| format!("not a Crosstalk trace: {err}"))?;
    let hash = trace.hash_hex();
    Ok((TraceIndex::complete(trace.header, trace.events), hash))
}

/// The file name at the end of an address, for the status line.
pub fn name_from_url(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/')
        .find(|part| !part.is_empty())
        .unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::RunRequest;

    #[test]
    fn a_simulated_trace_reads_back_with_its_hash() {
        let request = RunRequest {
            scenario: "eventual-consistency".into(),
            seed: 5,
            until_s: 4.0,
            knobs: Default::default(),
            faults: Vec::new(),
        };
        let trace = engine::simulate(&request).unwrap();
        let (index, hash) = read_trace(&trace.to_jsonl()).unwrap();
        assert_eq!(hash, trace.hash_hex());
        assert_eq!(index.events().to_vec(), trace.events);
        assert!(index.is_complete());
    }

    #[test]
    fn bad_files_are_explained() {
        let check = |text: &str, expected: &str| {
            let err = read_trace(text).err().unwrap();
            assert!(err.contains(expected), "{err}");
        };
        check("", "not a Crosstalk trace: the trace is empty");
        check("{\"hello\": 1}\n", "not a Crosstalk trace");
        let big = " ".repeat(TRACE_BYTES_MAX + 1);
        check(&big, "up to 64 MB");
    }

    #[test]
    fn names_come_from_addresses() {
        assert_eq!(
            name_from_url("https://x.org/runs/a.jsonl?v=2#top"),
            "a.jsonl"
        );
        assert_eq!(name_from_url("https://x.org/runs/"), "runs");
        assert_eq!(name_from_url("run.jsonl"), "run.jsonl");
    }
}
