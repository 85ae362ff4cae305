//! What a web page, a local process or a peer on the network can try
//! against a gateway's surfaces, and what each gets: the canvas never serves
//! a file outside its root, even under a racing symlink swap, and streams
//! what it serves.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Swaps `<root>/sub` between a real directory and a symlink to a directory
/// outside the root, as fast as it can, until `stop` is set.
#[cfg(unix)]
fn swap_sub_until(root: &Path, outside: &Path, stop: &AtomicBool) {
    let sub = root.join("sub");
    let real = root.join(".real");
    let link = root.join(".link");
    std::os::unix::fs::symlink(outside, &link).expect("symlink");
    while !stop.load(Ordering::Relaxed) {
        let _ = std::fs::rename(&real, &sub);
        let _ = std::fs::rename(&sub, &real);
        let _ = std::fs::rename(&link, &sub);
        let _ = std::fs::rename(&sub, &link);
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canvas_never_serves_an_outside_file_swapped_in_during_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(dir.path(), "main");
    let root = s.canvas.root.clone();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(root.join(".real")).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(root.join(".real/f.txt"), "inside").expect("write");
    std::fs::write(outside.join("f.txt"), "OUTSIDE").expect("write");
    let gw = start(s);
    let canvas = gw.addrs.canvas.expect("canvas enabled");

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (root, outside, stop) = (root.clone(), outside.clone(), stop.clone());
        std::thread::spawn(move || swap_sub_until(&root, &outside, &stop))
    };
    let (mut inside, mut leaked) = (0, 0);
    for _ in 0..3000 {
        let (status, _, body) = http(canvas, "GET", "/sub/f.txt").await;
        match (status, body.as_str()) {
            (200, "inside") => inside += 1,
            (_, b) if b.contains("OUTSIDE") => leaked += 1,
            (403 | 404, _) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().expect("swapper");
    assert_eq!(
        leaked, 0,
        "the outside file was served {leaked} times of 3000"
    );
    assert!(
        inside > 0,
        "the inside file was never served: the race was not exercised"
    );
    gw.stop().await;
}

/// Resident memory of this process, in MiB.
#[cfg(target_os = "linux")]
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS");
    kib / 1024
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn canvas_streams_a_large_file_instead_of_reading_it_whole() {
    const SIZE: u64 = 256 * 1024 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(dir.path(), "main");
    std::fs::create_dir_all(&s.canvas.root).expect("mkdir");
    // Sparse: no disk used, but every byte is read as a zero.
    let big = std::fs::File::create(s.canvas.root.join("big.bin")).expect("create");
    big.set_len(SIZE).expect("set_len");
    drop(big);
    let gw = start(s);
    let canvas = gw.addrs.canvas.expect("canvas enabled");

    let before = rss_mib();
    let mut tcp = TcpStream::connect(canvas).await.expect("connect");
    tcp.write_all(format!("GET /big.bin HTTP/1.1\r\nHost: {canvas}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut first = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < first.len() {
        let n = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut first[got..]))
            .await
            .expect("bytes in time")
            .expect("read");
        assert!(n > 0, "closed early");
        got += n;
    }
    let head = String::from_utf8_lossy(&first[..1024]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {SIZE}")), "{head}");
    let grown = rss_mib().saturating_sub(before);
    assert!(
        grown < 64,
        "serving the first 256 KiB of a 256 MiB file grew the process by {grown} MiB"
    );
    drop(tcp);
    gw.stop().await;
}
