//! `brigade run` into a bulk indexing endpoint: a file of JSON lines sent as `_bulk`
//! requests to the testkit's endpoint, the documents it refuses in the dead-letter
//! file with the endpoint's reasons, exactly those, and every other one stored once.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use brigade_testkit::bulk::{BulkServer, Capacity};
use serde_json::Value;

/// Runs `brigade run p.toml --headless --report json` in `dir`, with `TOKEN` set.
fn run(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(["run", "p.toml", "--headless", "--report", "json"])
        .env("BULK_TOKEN", "s3cret")
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

#[test]
fn a_file_goes_to_the_bulk_endpoint_and_exactly_the_refused_documents_are_dead_lettered() {
    let server = BulkServer::start(Capacity {
        fail_share: 0.05,
        per_doc: Duration::from_micros(5),
        ..Capacity::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let records = 2_000u64;
    let text: String = (0..records)
        .map(|n| format!("{{\"id\":\"doc-{n}\",\"n\":{n}}}\n"))
        .collect();
    std::fs::write(dir.path().join("in/a.jsonl"), text).unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        format!(
            "[source]\ntype = \"file\"\npath = \"in/*.jsonl\"\nformat = \"jsonl\"\n\
             [sink]\ntype = \"http\"\nurl = \"{}/_bulk\"\nformat = \"bulk\"\n\
             index = \"docs\"\nid_field = \"id\"\ngzip = true\nbatch_size = 200\n\
             headers = {{ Authorization = \"Bearer ${{BULK_TOKEN}}\" }}\n\
             [dead_letter]\npath = \"dead.jsonl\"\n",
            server.url()
        ),
    )
    .unwrap();

    let output = run(dir.path());
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();

    let refused: BTreeSet<String> = (0..records)
        .map(|n| format!("doc-{n}"))
        .filter(|id| server.rejects(id))
        .collect();
    assert!(!refused.is_empty(), "5% of 2,000 documents fail");
    let stored = server.documents("docs");
    assert_eq!(stored.len() as u64, records - refused.len() as u64);
    assert!(stored.keys().all(|id| !refused.contains(id)));
    assert_eq!(stored["doc-7"]["n"], 7);
    let seen = server.received();
    assert_eq!(seen.indexed, stored.len() as u64, "each document stored once");
    // 2,000 documents in batches of at most 200, every body compressed.
    assert!(seen.gzipped >= 10, "{seen:?}");

    let letters: Vec<Value> = std::fs::read_to_string(dir.path().join("dead.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let dead: BTreeSet<String> = letters
        .iter()
        .map(|letter| letter["record"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(dead, refused);
    assert_eq!(letters.len(), refused.len());
    for letter in &letters {
        let error = letter["error"].as_str().unwrap();
        assert!(
            error.contains("HTTP 400") && error.contains("mapper_parsing_exception"),
            "{error}"
        );
        assert_eq!(letter["cause"]["kind"], "permanent");
        assert!(letter["origin"].as_str().unwrap().contains("a.jsonl:"));
    }
    assert_eq!(report["admitted"], records);
    assert_eq!(report["dead_lettered"], refused.len() as u64);
    assert_eq!(
        report["connectors"]["sink"]["written"],
        records - refused.len() as u64,
        "{report}"
    );
}
