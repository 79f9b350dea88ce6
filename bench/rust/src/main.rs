//! The Rust peers for W1..W5 (see bench/bench_buf.c and bench/bench_lock.c
//! for the workloads, bench/bench.h for the method and the output format):
//! Vec<u8> and bytes::BytesMut for the buffers; parking_lot::RwLock,
//! tokio::sync::RwLock (a current-thread runtime's block_on) and
//! async_lock::RwLock (futures_lite::future::block_on) for the locks.
//!
//! Usage: hb-bench-rust [workload-prefix...]

use bytes::{Buf, BufMut, BytesMut};
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

const WARMUP: Duration = Duration::from_millis(20);
const W1_BATCH: u64 = 1024;
const W2_BYTES: usize = 1 << 20;
const W3_PACKETS: usize = 1024;
const PKT: usize = 64;
const W4_BATCH: u64 = 1024;
const W5_TOTAL: i64 = 1 << 20;
const W5_CHUNK: i64 = 64;

/// Warm up until WARMUP has passed, then time as many units; print ns per
/// `per_unit` items and the checksum.
fn run(workload: &str, imp: &str, unit: &str, per_unit: f64, mut f: impl FnMut(u64) -> u64) {
    let mut sum = 0u64;
    let mut n = 0u64;
    let t0 = Instant::now();
    loop {
        sum = sum.wrapping_add(f(n));
        n += 1;
        if t0.elapsed() >= WARMUP {
            break;
        }
    }
    let t1 = Instant::now();
    for i in 0..n {
        sum = sum.wrapping_add(f(i));
    }
    let ns = t1.elapsed().as_nanos() as f64;
    black_box(sum);
    println!("{workload},{imp},{unit},{:.4},{sum},,", ns / (n as f64 * per_unit));
}

// ---- W1 -------------------------------------------------------------------

fn w1_vec(it: u64) -> u64 {
    let mut sum = 0u64;
    for k in 0..W1_BATCH {
        let mut v: Vec<u8> = Vec::with_capacity(120);
        v.resize(13, 0);
        for j in 0..13u64 {
            v[j as usize] = (it + k + j) as u8;
        }
        black_box(&mut v);
        sum += v[(k % 13) as usize] as u64;
    }
    sum
}

fn w1_bytesmut(it: u64) -> u64 {
    let mut sum = 0u64;
    for k in 0..W1_BATCH {
        let mut b = BytesMut::with_capacity(120);
        b.resize(13, 0);
        for j in 0..13u64 {
            b[j as usize] = (it + k + j) as u8;
        }
        black_box(&mut b);
        sum += b[(k % 13) as usize] as u64;
    }
    sum
}

// ---- W1-live: four at a time, made and written, then freed together -----

const W1_LIVE: u64 = 4;

fn w1l_vec(it: u64) -> u64 {
    let mut sum = 0u64;
    for k in (0..W1_BATCH).step_by(W1_LIVE as usize) {
        let mut vs: [Vec<u8>; W1_LIVE as usize] = Default::default();
        for (i, v) in vs.iter_mut().enumerate() {
            let i = i as u64;
            *v = Vec::with_capacity(120);
            v.resize(13, 0);
            for j in 0..13u64 {
                v[j as usize] = (it + k + i + j) as u8;
            }
            black_box(&mut *v);
            sum += v[((k + i) % 13) as usize] as u64;
        }
    } // the four dropped here, together
    sum
}

fn w1l_bytesmut(it: u64) -> u64 {
    let mut sum = 0u64;
    for k in (0..W1_BATCH).step_by(W1_LIVE as usize) {
        let mut bs: [BytesMut; W1_LIVE as usize] = Default::default();
        for (i, b) in bs.iter_mut().enumerate() {
            let i = i as u64;
            *b = BytesMut::with_capacity(120);
            b.resize(13, 0);
            for j in 0..13u64 {
                b[j as usize] = (it + k + i + j) as u8;
            }
            black_box(&mut *b);
            sum += b[((k + i) % 13) as usize] as u64;
        }
    }
    sum
}

// ---- W2 -------------------------------------------------------------------

fn w2_vec(it: u64, reserve: bool) -> u64 {
    let mut v: Vec<u8> = if reserve { Vec::with_capacity(W2_BYTES) } else { Vec::new() };
    for i in 0..W2_BYTES {
        v.push((i as u64).wrapping_add(it) as u8);
    }
    black_box(&mut v);
    v.len() as u64 + v[it as usize % W2_BYTES] as u64
}

fn w2_bytesmut(it: u64, reserve: bool) -> u64 {
    let mut b = if reserve { BytesMut::with_capacity(W2_BYTES) } else { BytesMut::new() };
    for i in 0..W2_BYTES {
        b.put_u8((i as u64).wrapping_add(it) as u8);
    }
    black_box(&mut b);
    b.len() as u64 + b[it as usize % W2_BYTES] as u64
}

/// W2-src: the bytes come from a source array; the buffer starts empty.
fn w2s_vec(src: &[u8], it: u64) -> u64 {
    let mut v: Vec<u8> = Vec::new();
    for &c in src {
        v.push(c);
    }
    black_box(&mut v);
    v.len() as u64 + v[it as usize % W2_BYTES] as u64
}

fn w2s_bytesmut(src: &[u8], it: u64) -> u64 {
    let mut b = BytesMut::new();
    for &c in src {
        b.put_u8(c);
    }
    black_box(&mut b);
    b.len() as u64 + b[it as usize % W2_BYTES] as u64
}

// ---- W3 -------------------------------------------------------------------

/// The packets' source, as in bench_buf.c: 1024 packets of distinct bytes.
fn w3_source() -> Vec<[u8; PKT]> {
    (0..W3_PACKETS)
        .map(|k| {
            let mut p = [0u8; PKT];
            for (j, b) in p.iter_mut().enumerate() {
                *b = (k * 7 + j) as u8;
            }
            p
        })
        .collect()
}

fn w3_vec(v: &mut Vec<u8>, src: &[[u8; PKT]], it: u64) -> u64 {
    let mut out = [0u8; PKT];
    let mut sum = it;
    for pkt in src {
        v.extend_from_slice(pkt);
    }
    let mut off = 0;
    for _ in 0..W3_PACKETS {
        out.copy_from_slice(&v[off..off + PKT]);
        off += PKT;
        black_box(&mut out);
        sum += out[0] as u64 + out[PKT - 1] as u64;
    }
    v.drain(..off);
    sum
}

fn w3_bytesmut(b: &mut BytesMut, src: &[[u8; PKT]], it: u64) -> u64 {
    let mut out = [0u8; PKT];
    let mut sum = it;
    for pkt in src {
        b.put_slice(pkt);
    }
    for _ in 0..W3_PACKETS {
        b.copy_to_slice(&mut out);
        black_box(&mut out);
        sum += out[0] as u64 + out[PKT - 1] as u64;
    }
    sum
}

/// W3-fresh: a fresh buffer per unit, the packets consumed in place.
fn w3f_vec(src: &[[u8; PKT]], it: u64) -> u64 {
    let mut v: Vec<u8> = Vec::new();
    let mut sum = it;
    for pkt in src {
        v.extend_from_slice(pkt);
    }
    let mut off = 0;
    for _ in 0..W3_PACKETS {
        let p = black_box(&v[off..off + PKT]);
        sum += p[0] as u64 + p[PKT - 1] as u64;
        off += PKT;
    }
    sum
}

fn w3f_bytesmut(src: &[[u8; PKT]], it: u64) -> u64 {
    let mut b = BytesMut::new();
    let mut sum = it;
    for pkt in src {
        b.put_slice(pkt);
    }
    for _ in 0..W3_PACKETS {
        let p = black_box(&b[..PKT]);
        sum += p[0] as u64 + p[PKT - 1] as u64;
        b.advance(PKT);
    }
    sum
}

// ---- W5 harness -----------------------------------------------------------

/// Two threads, a writer (side 0) and a reader (side 1), each claiming
/// chunks of the shared budget until it is spent.  `side(i, budget, start)`
/// sets up (a runtime, say), calls `go(start)` (which waits at the barrier
/// and returns the thread's start time), runs the thread's loop and returns
/// (its operations, what it read, its start time).  The wall time runs from
/// the first thread's start to the last one's end, as the threads saw it.
fn w5_run<F>(imp: &str, counter: impl Fn() -> u64, side: F)
where
    F: Fn(usize, &AtomicI64, &Barrier) -> (u64, u64, Instant) + Sync,
{
    let once = |total: i64| {
        let budget = AtomicI64::new(total);
        let start = Barrier::new(2);
        let mut res = [(0u64, 0u64); 2];
        let (mut t0, mut t1) = (None::<Instant>, None::<Instant>);
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|i| {
                    let (budget, start, side) = (&budget, &start, &side);
                    s.spawn(move || {
                        let (ops, sum, begin) = side(i, budget, start);
                        (ops, sum, begin, Instant::now())
                    })
                })
                .collect();
            for (i, h) in hs.into_iter().enumerate() {
                let (ops, sum, begin, end) = h.join().unwrap();
                res[i] = (ops, sum);
                t0 = Some(t0.map_or(begin, |t| t.min(begin)));
                t1 = Some(t1.map_or(end, |t| t.max(end)));
            }
        });
        ((t1.unwrap() - t0.unwrap()).as_nanos() as f64, res)
    };
    once(W5_TOTAL / 8); // warm-up
    let (ns, res) = once(W5_TOTAL);
    let total = (res[0].0 + res[1].0) as f64;
    println!(
        "W5,{imp},ns/op,{:.4},{},{:.3},{:.3}",
        ns / total,
        res[1].1.wrapping_add(counter()),
        res[0].0 as f64 / total,
        res[1].0 as f64 / total
    );
}

fn go(start: &Barrier) -> Instant {
    start.wait();
    Instant::now()
}

#[inline(always)]
fn claim(budget: &AtomicI64) -> bool {
    budget.fetch_sub(W5_CHUNK, Ordering::Relaxed) > 0
}

fn current_thread_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime")
}

fn want(args: &[String], workload: &str) -> bool {
    args.is_empty() || args.iter().any(|a| workload.starts_with(a.as_str()))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();

    if want(&args, "W1") {
        run("W1", "Rust Vec", "ns/iter", W1_BATCH as f64, w1_vec);
        run("W1", "BytesMut", "ns/iter", W1_BATCH as f64, w1_bytesmut);
    }
    if want(&args, "W1-live") {
        run("W1-live", "Rust Vec", "ns/iter", W1_BATCH as f64, w1l_vec);
        run("W1-live", "BytesMut", "ns/iter", W1_BATCH as f64, w1l_bytesmut);
    }
    if want(&args, "W2-src") {
        let src: Vec<u8> = (0..W2_BYTES).map(|i| (i * 13 + 5) as u8).collect();
        run("W2-src", "Rust Vec", "ns/byte", W2_BYTES as f64, |it| w2s_vec(&src, it));
        run("W2-src", "BytesMut", "ns/byte", W2_BYTES as f64, |it| w2s_bytesmut(&src, it));
    }
    for (w, reserve) in [("W2-empty", false), ("W2-reserved", true)] {
        if want(&args, w) {
            run(w, "Rust Vec", "ns/byte", W2_BYTES as f64, |it| w2_vec(it, reserve));
            run(w, "BytesMut", "ns/byte", W2_BYTES as f64, |it| w2_bytesmut(it, reserve));
        }
    }
    if want(&args, "W3-fresh") {
        let src = w3_source();
        run("W3-fresh", "Rust Vec", "ns/packet", W3_PACKETS as f64, |it| w3f_vec(&src, it));
        run("W3-fresh", "BytesMut", "ns/packet", W3_PACKETS as f64, |it| {
            w3f_bytesmut(&src, it)
        });
    }
    if want(&args, "W3") {
        let src = w3_source();
        let mut v = Vec::new();
        run("W3", "Rust Vec", "ns/packet", W3_PACKETS as f64, |it| w3_vec(&mut v, &src, it));
        let mut b = BytesMut::new();
        run("W3", "BytesMut", "ns/packet", W3_PACKETS as f64, |it| {
            w3_bytesmut(&mut b, &src, it)
        });
    }

    // ---- W4: one thread, lock + access + unlock -----------------------------
    let pl = parking_lot::RwLock::new(0u64);
    let tk = tokio::sync::RwLock::new(0u64);
    let al = async_lock::RwLock::new(0u64);
    let rt = current_thread_rt();
    let b = W4_BATCH as f64;
    if want(&args, "W4-write") {
        run("W4-write", "parking_lot", "ns/pair", b, |_| {
            for _ in 0..W4_BATCH {
                *pl.write() += 1;
            }
            *pl.read()
        });
        run("W4-write", "tokio RwLock", "ns/pair", b, |_| {
            rt.block_on(async {
                for _ in 0..W4_BATCH {
                    *tk.write().await += 1;
                }
                *tk.read().await
            })
        });
        run("W4-write", "async_lock", "ns/pair", b, |_| {
            futures_lite::future::block_on(async {
                for _ in 0..W4_BATCH {
                    *al.write().await += 1;
                }
                *al.read().await
            })
        });
    }
    if want(&args, "W4-read") {
        run("W4-read", "parking_lot", "ns/pair", b, |_| {
            let mut sum = 0u64;
            for _ in 0..W4_BATCH {
                sum = sum.wrapping_add(*pl.read());
            }
            sum
        });
        run("W4-read", "tokio RwLock", "ns/pair", b, |_| {
            rt.block_on(async {
                let mut sum = 0u64;
                for _ in 0..W4_BATCH {
                    sum = sum.wrapping_add(*tk.read().await);
                }
                sum
            })
        });
        run("W4-read", "async_lock", "ns/pair", b, |_| {
            futures_lite::future::block_on(async {
                let mut sum = 0u64;
                for _ in 0..W4_BATCH {
                    sum = sum.wrapping_add(*al.read().await);
                }
                sum
            })
        });
    }
    drop(rt);

    // ---- W5: two threads, writer and reader --------------------------------
    if want(&args, "W5") {
        w5_run("parking_lot", || *pl.read(), |side, budget, start| {
            let begin = go(start);
            let (mut ops, mut sum) = (0u64, 0u64);
            while claim(budget) {
                for _ in 0..W5_CHUNK {
                    if side == 0 {
                        *pl.write() += 1;
                    } else {
                        sum = sum.wrapping_add(*pl.read());
                    }
                }
                ops += W5_CHUNK as u64;
            }
            (ops, sum, begin)
        });
        w5_run("tokio RwLock", || *tk.try_read().unwrap(), |side, budget, start| {
            let rt = current_thread_rt();
            let begin = go(start);
            rt.block_on(async {
                let (mut ops, mut sum) = (0u64, 0u64);
                while claim(budget) {
                    for _ in 0..W5_CHUNK {
                        if side == 0 {
                            *tk.write().await += 1;
                        } else {
                            sum = sum.wrapping_add(*tk.read().await);
                        }
                    }
                    ops += W5_CHUNK as u64;
                }
                (ops, sum, begin)
            })
        });
        w5_run("async_lock", || *al.try_read().unwrap(), |side, budget, start| {
            let begin = go(start);
            futures_lite::future::block_on(async {
                let (mut ops, mut sum) = (0u64, 0u64);
                while claim(budget) {
                    for _ in 0..W5_CHUNK {
                        if side == 0 {
                            *al.write().await += 1;
                        } else {
                            sum = sum.wrapping_add(*al.read().await);
                        }
                    }
                    ops += W5_CHUNK as u64;
                }
                (ops, sum, begin)
            })
        });
    }
}
