use super::*;

fn record(bytes: usize) -> Msg {
    let mut f = crate::audit::chain::Fields::default();
    f.put("pad", &"x".repeat(bytes));
    Msg::Record {
        record: Unsealed::from_fields(f),
        ack: None,
        index: None,
    }
}

/// Records no one waits for are held for a group; the first one a
/// caller waits for is synced at once, taking them along.
#[test]
fn a_record_a_caller_waits_for_is_not_held_for_the_group() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.jsonl");
    let config: AuditConfig = toml::from_str(&format!(
        "file = {:?}\ngroup_commit_ms = 1000\ngroup_commit_records = 65536",
        path.display().to_string()
    ))
    .expect("config");
    let sink = Sink::start(
        &config,
        Sealer::new("test".into(), "run-1".into(), None),
        None,
    )
    .expect("start");
    let record = |pad: &str| {
        let mut f = crate::audit::chain::Fields::default();
        f.put("pad", &pad);
        Unsealed::from_fields(f)
    };
    sink.send(record("held"), None, None);
    let started = Instant::now();
    let (tx, rx) = oneshot::channel();
    sink.send(record("awaited"), Some(tx), None);
    assert_eq!(rx.blocking_recv().expect("answered"), Ok(()));
    let waited = started.elapsed();
    // Well inside the 1 s group: it did not wait for the group's end.
    assert!(waited < Duration::from_millis(700), "{waited:?}");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains("held") && text.contains("awaited"), "{text}");
    sink.close();
}

#[test]
fn the_queue_is_bounded_in_bytes() {
    let q = Queue::new(10_000);
    assert!(q.push(record(4_000)).is_ok());
    assert!(q.push(record(4_000)).is_ok());
    assert!(q.push(record(4_000)).is_err(), "past max_queue_bytes");
    let (taken, _) = q.take(1, Instant::now());
    assert_eq!(taken.len(), 2);
    assert!(q.push(record(4_000)).is_ok(), "taking frees the bytes");
}

#[test]
fn a_writer_that_dies_says_why_and_refuses_what_follows() {
    let q = Arc::new(Queue::new(1 << 20));
    let (tx, rx) = oneshot::channel();
    assert!(q.push(Msg::Flush(tx)).is_ok());
    let guard = Stopped(q.clone());
    let died = std::thread::spawn(move || {
        let _guard = guard;
        panic!("the writer fails");
    })
    .join();
    assert!(died.is_err());
    assert_eq!(
        q.stopped
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
            .as_deref(),
        Some("the audit writer thread panicked")
    );
    assert!(
        rx.blocking_recv().is_ok_and(|a| a.is_err()),
        "a waiter is answered"
    );
    assert!(q.push(record(10)).is_err(), "nothing more is queued");
}

#[test]
fn closing_is_not_a_death() {
    let q = Arc::new(Queue::new(1 << 20));
    q.close();
    drop(Stopped(q.clone()));
    assert!(q.stopped.lock().map(|s| s.is_none()).unwrap_or(false));
}

#[test]
fn start_up_reads_the_head_back_past_a_huge_last_record_and_a_huge_torn_tail() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.jsonl");
    let big = format!(
        "{{\"hash\":\"h2\",\"pad\":\"{}\",\"seq\":2}}\n",
        "y".repeat(5 << 20)
    );
    let first = "{\"hash\":\"h1\",\"seq\":1}\n";
    let text = format!("{first}{big}{}", "z".repeat(3 << 20));
    std::fs::write(&path, text).expect("write");
    let f = ChainFile::open(&path, 1 << 30, 10).expect("open");
    assert_eq!(
        f.head,
        Head {
            seq: 2,
            hash: "h2".into(),
        }
    );
    let len = std::fs::metadata(&path).expect("meta").len();
    assert_eq!(
        len as usize,
        first.len() + big.len(),
        "the torn tail is cut, nothing else"
    );
}

#[test]
fn rotation_keeps_at_most_max_files() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.jsonl");
    let mut f = ChainFile::open(&path, 4096, 3).expect("open");
    for seq in 1..=200u64 {
        let line = format!(
            "{{\"seq\":{seq},\"hash\":\"h\",\"pad\":\"{}\"}}\n",
            "x".repeat(300)
        );
        f.append(&[line.into_bytes()]).expect("append");
    }
    assert_eq!(rotated(&path).len(), 3);
}

#[test]
fn a_batch_larger_than_a_file_is_split_across_rotations() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.jsonl");
    let mut f = ChainFile::open(&path, 4096, 1000).expect("open");
    let lines: Vec<Vec<u8>> = (1..=40)
        .map(|seq| {
            format!(
                "{{\"seq\":{seq},\"hash\":\"h{seq}\",\"pad\":\"{}\"}}\n",
                "x".repeat(200)
            )
            .into_bytes()
        })
        .collect();
    f.append(&lines).expect("append");
    let files = rotated(&path);
    assert!(files.len() >= 2, "{files:?}");
    for p in files.iter().chain([&path]) {
        let len = std::fs::metadata(p).expect("meta").len();
        assert!(len <= 4096, "{} has {len} bytes", p.display());
    }
}
