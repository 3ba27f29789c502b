//! Deterministic test data: a fast PRNG, streamed blobs, and small OCI images.
//!
//! Blobs are regenerated from a seed instead of being held in memory, so a
//! 1 GiB push costs the client a few hundred milliseconds of CPU and no RAM.

use aws_lc_rs::digest;
use bytes::{Bytes, BytesMut};
use serde_json::json;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// The Accept header a container runtime sends when resolving a tag.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// xoshiro256++ seeded through splitmix64: several GB/s on one core, which
/// keeps data generation far from being the bottleneck of any scenario.
#[derive(Clone)]
pub struct Prng {
    s: [u64; 4],
}

impl Prng {
    pub fn new(seed: u64) -> Self {
        let mut state = seed;
        let mut splitmix = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix64(state)
        };
        Prng {
            s: [splitmix(), splitmix(), splitmix(), splitmix()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = &mut self.s;
        let result = s0.wrapping_add(*s3).rotate_left(23).wrapping_add(*s0);
        let t = *s1 << 17;
        *s2 ^= *s0;
        *s3 ^= *s1;
        *s1 ^= *s2;
        *s0 ^= *s3;
        *s2 ^= t;
        *s3 = s3.rotate_left(45);
        result
    }

    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let bytes = self.next_u64().to_le_bytes();
            tail.copy_from_slice(&bytes[..tail.len()]);
        }
    }

    pub fn bytes(&mut self, len: usize) -> Bytes {
        let mut buf = BytesMut::zeroed(len);
        self.fill(&mut buf);
        buf.freeze()
    }
}

/// A blob defined by a seed and a size; its bytes are generated on demand.
///
/// The blob is made of independent `GEN_CHUNK`-sized blocks, each from its
/// own PRNG stream, so any block can be produced without generating the ones
/// before it (chunked uploads and range reads start mid-blob).
#[derive(Clone, Copy, Debug)]
pub struct BlobSpec {
    pub seed: u64,
    pub size: u64,
}

/// Block size of generated blobs; large enough to amortise per-chunk
/// overhead in the HTTP stack, small enough to stay in cache.
pub const GEN_CHUNK: usize = 1 << 20;

impl BlobSpec {
    pub fn blocks(&self) -> u64 {
        self.size.div_ceil(GEN_CHUNK as u64)
    }

    /// Block `index`; only the last block may be shorter than `GEN_CHUNK`.
    pub fn block(&self, index: u64) -> Bytes {
        let start = index * GEN_CHUNK as u64;
        let len = self.size.saturating_sub(start).min(GEN_CHUNK as u64) as usize;
        Prng::new(mix64(self.seed ^ mix64(index.wrapping_add(1)))).bytes(len)
    }

    /// Generates the whole blob once to compute its digest (outside any timing).
    pub fn digest(&self) -> String {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for i in 0..self.blocks() {
            ctx.update(&self.block(i));
        }
        sha256_string(ctx.finish())
    }

    /// `len` bytes from `offset` as a stream for a request body. `offset`
    /// must be block-aligned; callers check their chunk sizes for that.
    pub fn stream(
        &self,
        offset: u64,
        len: u64,
    ) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        debug_assert!(
            offset.is_multiple_of(GEN_CHUNK as u64),
            "offset must be block-aligned"
        );
        let spec = *self;
        let end = offset.saturating_add(len).min(self.size);
        let first = offset / GEN_CHUNK as u64;
        let last = end.div_ceil(GEN_CHUNK as u64);
        futures::stream::iter((first..last).map(move |i| {
            let block = spec.block(i);
            let block_end = i * GEN_CHUNK as u64 + block.len() as u64;
            // Cut the final block if the range ends inside it.
            let keep = block.len() - block_end.saturating_sub(end) as usize;
            Ok(block.slice(..keep))
        }))
    }
}

/// The splitmix64 finaliser: a cheap bijective mixer to derive block seeds.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn sha256_string(d: digest::Digest) -> String {
    format!("sha256:{}", hex::encode(d.as_ref()))
}

pub fn sha256_of(data: &[u8]) -> String {
    sha256_string(digest::digest(&digest::SHA256, data))
}

/// A tar archive holding one regular file: gives layers that any tool
/// inspecting them (skopeo, a runtime) accepts, with incompressible content.
pub fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    fn octal(field: &mut [u8], value: u64) {
        // NUL-terminated, zero-padded octal, as ustar expects.
        let digits = field.len() - 1;
        let text = format!("{value:0digits$o}");
        field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
        field[digits] = 0;
    }

    let mut header = [0u8; 512];
    let name_len = name.len().min(99);
    header[..name_len].copy_from_slice(&name.as_bytes()[..name_len]);
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 0);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field filled with spaces.
    header[148..156].fill(b' ');
    let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());

    let padding = (512 - content.len() % 512) % 512;
    let mut out = Vec::with_capacity(512 + content.len() + padding + 1024);
    out.extend_from_slice(&header);
    out.extend_from_slice(content);
    out.resize(out.len() + padding + 1024, 0);
    out
}

/// Total size of `tar_with_file` for a given file size.
pub fn tar_size(content_len: usize) -> usize {
    512 + content_len.div_ceil(512) * 512 + 1024
}

/// A complete single-platform OCI image held in memory (cheap to clone:
/// the buffers are reference-counted).
#[derive(Clone)]
pub struct Image {
    pub config: Bytes,
    pub layers: Vec<Bytes>,
    pub manifest: Bytes,
    pub manifest_digest: String,
}

impl Image {
    /// Builds an image with `layer_count` tar layers whose payload is
    /// `file_size` random bytes each. Everything, including the config, is
    /// unique per seed, so no registry can deduplicate across seeds.
    pub fn generate(seed: u64, layer_count: usize, file_size: usize) -> Image {
        let mut prng = Prng::new(seed);
        let layers: Vec<Bytes> = (0..layer_count)
            .map(|i| {
                Bytes::from(tar_with_file(
                    &format!("data-{i}.bin"),
                    &prng.bytes(file_size),
                ))
            })
            .collect();
        let layer_digests: Vec<String> = layers.iter().map(|l| sha256_of(l)).collect();
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": { "Labels": { "dev.berth.bench.seed": seed.to_string() } },
            "rootfs": { "type": "layers", "diff_ids": layer_digests },
        });
        let config = Bytes::from(config.to_string());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": sha256_of(&config),
                "size": config.len(),
            },
            "layers": layers.iter().zip(&layer_digests).map(|(l, d)| json!({
                "mediaType": OCI_LAYER_TAR,
                "digest": d,
                "size": l.len(),
            })).collect::<Vec<_>>(),
        });
        let manifest = Bytes::from(manifest.to_string());
        let manifest_digest = sha256_of(&manifest);
        Image {
            config,
            layers,
            manifest,
            manifest_digest,
        }
    }

    /// Config first, then layers: the order a client uploads them in.
    pub fn blobs(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.config).chain(&self.layers)
    }
}

/// Mixes a scenario tag, a round and an index into a seed, so that every
/// round of every scenario pushes data never seen before in this run, and
/// `run_seed` makes runs differ from each other too.
pub fn seed(run_seed: u64, scenario: &str, round: usize, index: usize) -> u64 {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&run_seed.to_le_bytes());
    ctx.update(scenario.as_bytes());
    ctx.update(&(round as u64).to_le_bytes());
    ctx.update(&(index as u64).to_le_bytes());
    let d = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d.as_ref()[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn whole(spec: &BlobSpec) -> Vec<u8> {
        (0..spec.blocks())
            .flat_map(|i| spec.block(i).to_vec())
            .collect()
    }

    #[test]
    fn blocks_cover_the_blob() {
        let spec = BlobSpec {
            seed: 7,
            size: 2 * GEN_CHUNK as u64 + 5,
        };
        let data = whole(&spec);
        assert_eq!(data.len() as u64, spec.size);
        assert_eq!(spec.block(2).len(), 5);
        assert_ne!(spec.block(0), spec.block(1));
        assert_eq!(spec.digest(), sha256_of(&data));
    }

    #[tokio::test]
    async fn stream_ranges_match_whole() {
        let spec = BlobSpec {
            seed: 9,
            size: 3 * GEN_CHUNK as u64 + 100,
        };
        let data = whole(&spec);
        for (offset, len) in [
            (0, spec.size),
            (GEN_CHUNK as u64, 1000),
            (2 * GEN_CHUNK as u64, u64::MAX / 2),
        ] {
            let parts: Vec<_> = spec.stream(offset, len).collect().await;
            let mut got = Vec::new();
            for p in parts {
                got.extend_from_slice(&p.expect("infallible stream"));
            }
            let end = (offset + len).min(spec.size) as usize;
            assert_eq!(got, &data[offset as usize..end]);
        }
    }

    #[test]
    fn different_seeds_differ() {
        assert_ne!(seed(1, "push", 0, 0), seed(1, "push", 1, 0));
        assert_ne!(seed(1, "push", 0, 0), seed(2, "push", 0, 0));
        assert_ne!(Prng::new(1).next_u64(), Prng::new(2).next_u64());
    }

    #[test]
    fn tar_layout() {
        let tar = tar_with_file("a.bin", &[1u8; 700]);
        assert_eq!(tar.len(), tar_size(700));
        assert_eq!(tar.len(), 512 + 1024 + 1024);
        assert_eq!(&tar[257..262], b"ustar");
        // Checksum field parses back to the header's byte sum.
        let field = std::str::from_utf8(&tar[148..154]).expect("ascii");
        let stored = u64::from_str_radix(field, 8).expect("octal");
        let mut header = tar[..512].to_vec();
        header[148..156].fill(b' ');
        assert_eq!(stored, header.iter().map(|&b| u64::from(b)).sum::<u64>());
    }

    #[test]
    fn image_is_consistent() {
        let img = Image::generate(5, 2, 1000);
        let manifest: serde_json::Value =
            serde_json::from_slice(&img.manifest).expect("valid json");
        assert_eq!(manifest["config"]["digest"], sha256_of(&img.config));
        assert_eq!(manifest["layers"][1]["digest"], sha256_of(&img.layers[1]));
        assert_eq!(img.manifest_digest, sha256_of(&img.manifest));
        assert_eq!(img.blobs().count(), 3);
    }
}
