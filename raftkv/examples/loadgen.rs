//! A load generator for `bench/run.sh`: drives a Redis-protocol server (raftkv, redis-server) or
//! etcd's v3 HTTP/JSON gateway with the same load, and prints throughput and latency.
//!
//! ```text
//! cargo run --release -p raftkv --example loadgen -- \
//!     --protocol resp|etcd --addr 127.0.0.1:7001 --op set|get \
//!     [--requests 20000] [--clients 50] [--pipeline 1] [--value-bytes 100] [--keys 10000]
//! ```
//!
//! Each client is a thread with one connection; it sends `--pipeline` requests at once, then
//! reads their replies, until the clients together have sent `--requests` (a bounded loop). A
//! request's latency runs from its batch's send to its own reply. Writes set `key:<n>` to a value
//! of `--value-bytes`; reads get `key:<n>`. etcd reads are linearizable (the gateway's range
//! default, `serializable: false`). Prints one line:
//! `RESULT target=<addr> op=<op> ops_per_sec=<n> p50_ms=<x> p99_ms=<x> errors=<n>`.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Resp,
    Etcd,
}

#[derive(Clone)]
struct Options {
    protocol: Protocol,
    addr: String,
    write: bool,
    requests: u64,
    clients: u64,
    pipeline: u64,
    value_bytes: usize,
    keys: u64,
}

fn usage(why: &str) -> ! {
    eprintln!("loadgen: {why}");
    eprintln!(
        "usage: loadgen --protocol resp|etcd --addr HOST:PORT --op set|get [--requests N] \
         [--clients N] [--pipeline N] [--value-bytes N] [--keys N]"
    );
    std::process::exit(2)
}

fn parse_options() -> Options {
    let mut options = Options {
        protocol: Protocol::Resp,
        addr: String::new(),
        write: true,
        requests: 20_000,
        clients: 50,
        pipeline: 1,
        value_bytes: 100,
        keys: 10_000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [name, value] = pair else {
            usage("every option takes a value")
        };
        let number = || {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or_else(|| usage(&format!("{name} takes a positive number")))
        };
        match name.as_str() {
            "--protocol" => {
                options.protocol = match value.as_str() {
                    "resp" => Protocol::Resp,
                    "etcd" => Protocol::Etcd,
                    _ => usage("--protocol is resp or etcd"),
                }
            }
            "--addr" => options.addr = value.clone(),
            "--op" => {
                options.write = match value.as_str() {
                    "set" => true,
                    "get" => false,
                    _ => usage("--op is set or get"),
                }
            }
            "--requests" => options.requests = number(),
            "--clients" => options.clients = number(),
            "--pipeline" => options.pipeline = number(),
            "--value-bytes" => options.value_bytes = number() as usize,
            "--keys" => options.keys = number(),
            _ => usage(&format!("unknown option {name}")),
        }
    }
    if options.addr.is_empty() {
        usage("--addr is required");
    }
    options
}

/// Standard base64 with padding (etcd's JSON gateway carries keys and values in it).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0u32, |w, (i, b)| w | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(word >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes of one request.
fn request(options: &Options, key: u64, value: &[u8]) -> Vec<u8> {
    let key = format!("key:{key}");
    match options.protocol {
        Protocol::Resp => {
            let mut args: Vec<&[u8]> = vec![if options.write { b"SET" } else { b"GET" }];
            args.push(key.as_bytes());
            if options.write {
                args.push(value);
            }
            let mut out = format!("*{}\r\n", args.len()).into_bytes();
            for arg in args {
                out.extend(format!("${}\r\n", arg.len()).as_bytes());
                out.extend(arg);
                out.extend(b"\r\n");
            }
            out
        }
        Protocol::Etcd => {
            let (path, body) = if options.write {
                let body = format!(
                    "{{\"key\":\"{}\",\"value\":\"{}\"}}",
                    base64(key.as_bytes()),
                    base64(value)
                );
                ("/v3/kv/put", body)
            } else {
                // Linearizable: the gateway's default (`serializable: false`).
                (
                    "/v3/kv/range",
                    format!("{{\"key\":\"{}\"}}", base64(key.as_bytes())),
                )
            };
            format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                options.addr,
                body.len()
            )
            .into_bytes()
        }
    }
}

/// Reads one RESP reply; whether it was not an error.
fn read_resp(reader: &mut impl BufRead) -> io::Result<bool> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "a malformed reply");
    match line.first() {
        Some(b'+') | Some(b':') => Ok(true),
        Some(b'-') => Ok(false),
        Some(b'$') => {
            let len: i64 = std::str::from_utf8(&line[1..])
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(bad)?;
            if len >= 0 {
                let mut body = vec![0u8; len as usize + 2];
                reader.read_exact(&mut body)?;
            }
            Ok(true)
        }
        _ => Err(bad()),
    }
}

/// Reads one HTTP response; whether its status was 200.
fn read_http(reader: &mut impl BufRead) -> io::Result<bool> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let ok = line.split(' ').nth(1) == Some("200");
    let mut length = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(ok)
}

/// One client: its requests' latencies in microseconds, and its errors.
fn client(options: &Options, next: &AtomicU64) -> io::Result<(Vec<u32>, u64)> {
    let stream = TcpStream::connect(&options.addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let value = vec![b'x'; options.value_bytes];
    let (mut latencies, mut errors) = (Vec::new(), 0);
    loop {
        let first = next.fetch_add(options.pipeline, Ordering::Relaxed);
        if first >= options.requests {
            return Ok((latencies, errors));
        }
        let count = options.pipeline.min(options.requests - first);
        let mut batch = Vec::new();
        for n in first..first + count {
            batch.extend(request(options, n % options.keys, &value));
        }
        let sent = Instant::now();
        writer.write_all(&batch)?;
        for _ in 0..count {
            let ok = match options.protocol {
                Protocol::Resp => read_resp(&mut reader)?,
                Protocol::Etcd => read_http(&mut reader)?,
            };
            errors += u64::from(!ok);
            latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
    }
}

fn main() {
    let options = parse_options();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..options.clients)
        .map(|_| {
            let (options, next) = (options.clone(), next.clone());
            thread::spawn(move || client(&options, &next))
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for worker in workers {
        match worker.join() {
            Ok(Ok((l, e))) => {
                latencies.extend(l);
                errors += e;
            }
            Ok(Err(e)) => usage(&format!("a client failed: {e}")),
            Err(_) => usage("a client panicked"),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let quantile = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len().max(1));
        latencies
            .get(i - 1)
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    println!(
        "RESULT target={} op={} ops_per_sec={:.0} p50_ms={:.2} p99_ms={:.2} errors={}",
        options.addr,
        if options.write { "set" } else { "get" },
        latencies.len() as f64 / seconds,
        quantile(0.50),
        quantile(0.99),
        errors
    );
}
