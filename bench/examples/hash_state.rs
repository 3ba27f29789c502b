//! Hash state across replicas: can an upload's SHA-256 be carried from one
//! berth replica to another at a chunk boundary, and what does it cost?
//!
//! Measures SHA-256 over 1 GiB in 1 MiB updates with aws-lc-rs (what berth
//! hashes with today), the RustCrypto `sha2` crate 0.10 and 0.11, and 0.11
//! with its state serialized and restored after every update (what a replica
//! would persist at each chunk boundary); SHA-512 likewise over 256 MiB.
//! Then checks that a hash resumed from serialized state, split at
//! boundaries that are not multiples of the block, gives the same digest as
//! hashing in one go.
//!
//! `cargo run --release -p berth-bench --example hash_state [-- ROUNDS]`

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::digest as lc;
use sha2_next::digest::common::hazmat::{SerializableState, SerializedState};

const MIB: usize = 1 << 20;
const TOTAL: usize = 1 << 30;
const UPDATE: usize = MIB;

/// Deterministic, incompressible bytes (xorshift64*), so that every run
/// hashes the same input.
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// CPU time this thread has used, in seconds: on a machine shared with
/// other builds, wall time also counts the time the scheduler gave them.
fn thread_cpu_secs() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for clock_gettime to fill in.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

struct Rate {
    /// MiB per second of wall time.
    wall: f64,
    /// MiB per second of this thread's CPU time.
    cpu: f64,
}

/// Hashes `total` bytes as `total / buf.len()` updates of `buf`.
fn rate(buf: &[u8], total: usize, hash: &dyn Fn(&[u8], usize) -> Vec<u8>) -> (Rate, Vec<u8>) {
    let updates = total / buf.len();
    let mib = (updates * buf.len()) as f64 / MIB as f64;
    let cpu_started = thread_cpu_secs();
    let started = Instant::now();
    let digest = black_box(hash(buf, updates));
    let wall = started.elapsed().as_secs_f64();
    let cpu = thread_cpu_secs() - cpu_started;
    let rate = Rate {
        wall: mib / wall,
        cpu: mib / cpu,
    };
    (rate, digest)
}

fn aws_lc(algorithm: &'static lc::Algorithm, buf: &[u8], updates: usize) -> Vec<u8> {
    let mut ctx = lc::Context::new(algorithm);
    for _ in 0..updates {
        ctx.update(buf);
    }
    ctx.finish().as_ref().to_vec()
}

fn sha2_010(buf: &[u8], updates: usize) -> Vec<u8> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for _ in 0..updates {
        hasher.update(buf);
    }
    hasher.finalize().to_vec()
}

fn sha2_011<H: sha2_next::Digest>(buf: &[u8], updates: usize) -> Vec<u8> {
    let mut hasher = H::new();
    for _ in 0..updates {
        hasher.update(buf);
    }
    hasher.finalize().to_vec()
}

/// As a replica would do it: after each chunk the state goes out as bytes
/// (to the database) and the next chunk starts from those bytes.
fn sha2_011_resumed_each_update<H: sha2_next::Digest + SerializableState>(
    buf: &[u8],
    updates: usize,
) -> Vec<u8> {
    let mut saved: Vec<u8> = H::new().serialize().to_vec();
    for _ in 0..updates {
        let mut hasher = restore::<H>(&saved);
        hasher.update(buf);
        saved = hasher.serialize().to_vec();
    }
    restore::<H>(&saved).finalize().to_vec()
}

fn restore<H: SerializableState>(bytes: &[u8]) -> H {
    let state = SerializedState::<H>::try_from(bytes)
        .expect("a serialized state of this hash (SHA-256's is 104 bytes)");
    H::deserialize(&state).expect("a state this program serialized")
}

type Case = (&'static str, fn(&[u8], usize) -> Vec<u8>);

/// Runs `cases` interleaved, `rounds` times (so that a neighbour's load on
/// this shared machine falls on every case alike), prints the rates and
/// checks that all give the same digest.
fn measure(title: &str, cases: &[Case], buf: &[u8], total: usize, rounds: usize) {
    let mut wall = vec![Vec::new(); cases.len()];
    let mut cpu = vec![Vec::new(); cases.len()];
    let mut digests = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, (_, hash)) in cases.iter().enumerate() {
            let (r, d) = rate(buf, total, hash);
            wall[i].push(r.wall);
            cpu[i].push(r.cpu);
            digests[i] = d;
        }
    }
    println!("{title}, {rounds} rounds, MiB/s of CPU time (and of wall time):");
    for (i, (name, _)) in cases.iter().enumerate() {
        let best = cpu[i].iter().copied().fold(0.0, f64::max);
        let best_wall = wall[i].iter().copied().fold(0.0, f64::max);
        println!(
            "  {name:58} median {:5.0}  best {:5.0}   (wall: median {:5.0}  best {:5.0})",
            median(&mut cpu[i]),
            best,
            median(&mut wall[i]),
            best_wall
        );
    }
    assert!(
        digests.iter().all(|d| d == &digests[0]),
        "every implementation must give the same digest: {:?}",
        digests.iter().map(hex::encode).collect::<Vec<_>>()
    );
    println!("  all give {}", hex::encode(&digests[0]));
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|r| r.parse().expect("ROUNDS is a number"))
        .unwrap_or(5);
    println!(
        "sha_ni: {}",
        std::arch::is_x86_feature_detected!("sha") as u8
    );
    let buf = random_bytes(UPDATE, 0x5EED_0001);

    let sha256_cases: [Case; 4] = [
        ("aws-lc-rs 1.19 digest::Context", |buf, updates| {
            aws_lc(&lc::SHA256, buf, updates)
        }),
        ("sha2 0.10.9 Sha256", sha2_010),
        ("sha2 0.11.1 Sha256", sha2_011::<sha2_next::Sha256>),
        (
            "sha2 0.11.1 Sha256, state serialized+restored per update",
            sha2_011_resumed_each_update::<sha2_next::Sha256>,
        ),
    ];
    let sha512_cases: [Case; 3] = [
        (
            "aws-lc-rs 1.19 digest::Context (SHA-512)",
            |buf, updates| aws_lc(&lc::SHA512, buf, updates),
        ),
        ("sha2 0.11.1 Sha512", sha2_011::<sha2_next::Sha512>),
        (
            "sha2 0.11.1 Sha512, state serialized+restored per update",
            sha2_011_resumed_each_update::<sha2_next::Sha512>,
        ),
    ];
    let runs: [(&str, &[Case], usize); 2] = [
        ("SHA-256 over 1 GiB in 1 MiB updates", &sha256_cases, TOTAL),
        (
            "SHA-512 over 256 MiB in 1 MiB updates",
            &sha512_cases,
            TOTAL / 4,
        ),
    ];
    for (title, cases, total) in runs {
        measure(title, cases, &buf, total, rounds);
    }

    // Resuming at awkward boundaries: the serialized state carries the
    // partial block, so chunks need not be multiples of 64 bytes.
    let data = random_bytes(10 * MIB + 12_345, 0x5EED_0002);
    let expected = lc::digest(&lc::SHA256, &data);
    let boundaries = [1usize, 63, 64, 65, 4097, MIB - 1, MIB, 3 * MIB + 7];
    let mut state_len = 0;
    for chunk in boundaries {
        use sha2_next::Digest as _;
        let mut saved = sha2_next::Sha256::new().serialize().to_vec();
        for piece in data.chunks(chunk) {
            let mut hasher = restore::<sha2_next::Sha256>(&saved);
            hasher.update(piece);
            saved = hasher.serialize().to_vec();
        }
        state_len = saved.len();
        let resumed = restore::<sha2_next::Sha256>(&saved).finalize();
        assert_eq!(
            resumed.as_slice(),
            expected.as_ref(),
            "resumed at every {chunk} bytes"
        );
    }
    println!(
        "resumed from a {state_len}-byte serialized state at every 1, 63, 64, 65, 4097, \
         1 MiB - 1, 1 MiB and 3 MiB + 7 bytes of a 10 MiB + 12345 B blob: same digest as \
         aws-lc-rs in one go"
    );
    // The state is the 32-byte chaining value and the 8-byte block count,
    // then one byte counting the bytes of the partial block and those bytes
    // (63 at most). A count beyond the block is refused, not trusted.
    let garbage = vec![0xFFu8; state_len];
    let state = SerializedState::<sha2_next::Sha256>::try_from(&garbage[..])
        .expect("a buffer of the serialized length");
    println!(
        "a corrupt state (all 0xFF) is refused by deserialize: {}",
        sha2_next::Sha256::deserialize(&state).is_err()
    );
    let short = SerializedState::<sha2_next::Sha256>::try_from(&garbage[..state_len - 1]);
    println!(
        "a state one byte short is refused by try_from: {}",
        short.is_err()
    );
    {
        use sha2_next::Digest as _;
        let expected = lc::digest(&lc::SHA512, &data);
        let mut saved = sha2_next::Sha512::new().serialize().to_vec();
        for piece in data.chunks(MIB + 77) {
            let mut hasher = restore::<sha2_next::Sha512>(&saved);
            hasher.update(piece);
            saved = hasher.serialize().to_vec();
        }
        assert_eq!(
            restore::<sha2_next::Sha512>(&saved).finalize().as_slice(),
            expected.as_ref(),
            "SHA-512 resumed at every 1 MiB + 77 bytes"
        );
        println!(
            "SHA-512 resumed from a {}-byte serialized state at every 1 MiB + 77 bytes: same \
             digest as aws-lc-rs",
            saved.len()
        );
    }
}
