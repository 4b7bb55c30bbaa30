//! The event reader shared by the pod-log path and local mode.

mod common;

use common::{body_of, run_lines};
use kubectl_netdebug::events::{EventReader, Item, ReadError};
use protocol::Decoded;

fn cursor(lines: &[String]) -> futures::io::Cursor<Vec<u8>> {
    futures::io::Cursor::new(body_of(lines))
}

async fn read_all(reader: &mut EventReader, lines: &[String]) -> Result<Vec<Item>, ReadError> {
    let mut items = Vec::new();
    reader.read_from(cursor(lines), |i| items.push(i)).await?;
    Ok(items)
}

fn seqs(items: &[Item]) -> Vec<u64> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Event(d) => Some(d.seq()),
            Item::Gap { .. } => None,
        })
        .collect()
}

#[tokio::test]
async fn resume_skips_what_was_delivered() {
    let lines = run_lines();
    let mut reader = EventReader::new();
    let first = read_all(&mut reader, &lines[..2]).await.unwrap();
    assert_eq!(seqs(&first), [0, 1]);
    assert!(!reader.saw_done());
    // A reconnection re-reads the log from the beginning.
    let second = read_all(&mut reader, &lines).await.unwrap();
    assert_eq!(seqs(&second), [2, 3, 4]);
    assert!(reader.saw_done());
    assert_eq!(reader.duplicates_skipped(), 2);
    assert!(reader.gaps().is_empty());
    assert!(matches!(
        &second[2],
        Item::Event(Decoded::Event(e)) if matches!(e.event, protocol::Event::Done(_))
    ));
}

#[tokio::test]
async fn a_gap_is_reported_before_the_event_that_reveals_it() {
    let lines = run_lines();
    let mut reader = EventReader::new();
    let holey = vec![lines[0].clone(), lines[3].clone(), lines[4].clone()];
    let items = read_all(&mut reader, &holey).await.unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[1], Item::Gap { from: 1, to: 2 });
    assert_eq!(reader.gaps(), [(1, 2)]);
    assert_eq!(seqs(&items), [0, 3, 4]);
}

#[tokio::test]
async fn a_stream_not_starting_at_zero_is_a_gap() {
    let lines = run_lines();
    let mut reader = EventReader::new();
    let items = read_all(&mut reader, &lines[2..]).await.unwrap();
    assert_eq!(items[0], Item::Gap { from: 0, to: 1 });
}

#[tokio::test]
async fn unknown_types_are_delivered_as_unknown_and_keep_numbering() {
    let lines = run_lines();
    let mut reader = EventReader::new();
    let with_unknown = vec![
        lines[0].clone(),
        r#"{"v":1,"seq":1,"type":"teleport","data":{"x":1}}"#.to_string(),
        r#"{"v":1,"seq":2,"type":"evidence","data":{"kind":"quantum","x":1}}"#.to_string(),
    ];
    let items = read_all(&mut reader, &with_unknown).await.unwrap();
    assert_eq!(seqs(&items), [0, 1, 2]);
    assert_eq!(
        items[1],
        Item::Event(Decoded::Unknown {
            seq: 1,
            event_type: "teleport".into()
        })
    );
    assert_eq!(
        items[2],
        Item::Event(Decoded::Unknown {
            seq: 2,
            event_type: "evidence/quantum".into()
        })
    );
    assert!(reader.gaps().is_empty());
}

#[tokio::test]
async fn unknown_major_is_an_error() {
    let mut reader = EventReader::new();
    let err = read_all(
        &mut reader,
        &[r#"{"v":7,"seq":0,"type":"hello","data":{}}"#.to_string()],
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        ReadError::Protocol(protocol::DecodeError::UnsupportedMajor { found: 7, .. })
    ));
}

#[tokio::test]
async fn other_output_is_kept_for_diagnostics_not_delivered() {
    let lines = run_lines();
    let mut reader = EventReader::new();
    let mixed = vec![
        "netdebug-probe: cannot enter netns: Operation not permitted".to_string(),
        String::new(),
        lines[0].clone(),
        "{\"no\": \"envelope\"}".to_string(),
    ];
    let items = read_all(&mut reader, &mixed).await.unwrap();
    assert_eq!(seqs(&items), [0]);
    assert_eq!(
        reader.other_lines(),
        [
            "netdebug-probe: cannot enter netns: Operation not permitted",
            "{\"no\": \"envelope\"}"
        ]
    );
}

#[tokio::test]
async fn malformed_known_event_is_noted_and_numbering_kept() {
    let lines = run_lines();
    let mut reader = EventReader::new();
    let bad = vec![
        lines[0].clone(),
        r#"{"v":1,"seq":1,"type":"check_started","data":{"check":42}}"#.to_string(),
        lines[2].clone(),
    ];
    let items = read_all(&mut reader, &bad).await.unwrap();
    assert_eq!(seqs(&items), [0, 2]);
    assert!(reader.gaps().is_empty());
    assert_eq!(reader.malformed().len(), 1);
    assert!(reader.malformed()[0].starts_with("seq 1 (check_started)"));
}

#[tokio::test]
async fn reading_stops_at_done() {
    let mut lines = run_lines();
    lines.push(r#"{"v":1,"seq":5,"type":"hello","data":{}}"#.to_string());
    let mut reader = EventReader::new();
    let items = read_all(&mut reader, &lines).await.unwrap();
    assert_eq!(seqs(&items), [0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn an_endless_line_is_refused() {
    let mut reader = EventReader::new();
    let huge = "x".repeat(5 << 20);
    let err = read_all(&mut reader, &[huge]).await.unwrap_err();
    assert!(matches!(err, ReadError::LineTooLong));
}

#[tokio::test]
async fn lines_split_across_reads_are_joined() {
    // A one-byte buffer forces every line to arrive in pieces.
    let lines = run_lines();
    let inner = futures::io::Cursor::new(body_of(&lines));
    let input = futures::io::BufReader::with_capacity(1, inner);
    let mut reader = EventReader::new();
    let mut items = Vec::new();
    reader.read_from(input, |i| items.push(i)).await.unwrap();
    assert_eq!(seqs(&items), [0, 1, 2, 3, 4]);
}
