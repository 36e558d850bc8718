//! SHA-256 (FIPS 180-4), written here so nono needs no crypto crate: a
//! portable implementation, and the CPU's SHA extensions where present.

/// Round constants (FIPS 180-4 §4.2.2).
pub const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Initial hash value (FIPS 180-4 §5.3.3).
const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Which compression function a hasher uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Plain Rust, any CPU.
    Portable,
    /// x86 SHA extensions.
    ShaNi,
}

impl Engine {
    /// The fastest engine this CPU has.
    pub fn best() -> Engine {
        if crate::sys::has_sha_ni() {
            Engine::ShaNi
        } else {
            Engine::Portable
        }
    }
}

/// An incremental SHA-256.
#[derive(Clone)]
pub struct Sha256 {
    state: [u32; 8],
    /// A partial block.
    buf: [u8; 64],
    /// Bytes in `buf`.
    used: usize,
    /// Message length so far, in bytes.
    len: u64,
    engine: Engine,
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256::with_engine(Engine::best())
    }
}

impl Sha256 {
    /// A hasher using `engine` (falls back to portable if the CPU lacks it).
    pub fn with_engine(engine: Engine) -> Sha256 {
        Sha256 {
            state: H0,
            buf: [0; 64],
            used: 0,
            len: 0,
            engine,
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.used > 0 {
            let take = (64 - self.used).min(data.len());
            self.buf[self.used..self.used + take].copy_from_slice(&data[..take]);
            self.used += take;
            data = &data[take..];
            if self.used < 64 {
                return;
            }
            let block = self.buf;
            self.blocks(&block);
            self.used = 0;
        }
        let whole = data.len() / 64 * 64;
        if whole > 0 {
            self.blocks(&data[..whole]);
        }
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.used = rest.len();
    }

    /// Finish: the 32-byte digest.
    pub fn finish(mut self) -> [u8; 32] {
        let bits = self.len.wrapping_mul(8);
        let mut pad = [0u8; 72];
        pad[0] = 0x80;
        let padlen = if self.used < 56 {
            56 - self.used
        } else {
            120 - self.used
        };
        pad[padlen..padlen + 8].copy_from_slice(&bits.to_be_bytes());
        let len = self.len;
        self.update(&pad[..padlen + 8]);
        self.len = len;
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// Compress whole blocks.
    fn blocks(&mut self, data: &[u8]) {
        if self.engine == Engine::ShaNi && crate::sys::sha256_blocks_ni(&mut self.state, data) {
            return;
        }
        for block in data.chunks_exact(64) {
            compress(&mut self.state, block);
        }
    }
}

/// One block, portably (FIPS 180-4 §6.2.2).
fn compress(state: &mut [u32; 8], block: &[u8]) {
    let mut w = [0u32; 64];
    for (i, c) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    for t in 16..64 {
        let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
        let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16]
            .wrapping_add(s0)
            .wrapping_add(w[t - 7])
            .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for t in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(K[t])
            .wrapping_add(w[t]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

/// SHA-256 of `data` as 64 lowercase hex digits.
pub fn hex_digest(data: &[u8]) -> String {
    let mut h = Sha256::default();
    h.update(data);
    hex(&h.finish())
}

/// Lowercase hex.
pub fn hex(d: &[u8; 32]) -> String {
    Digest(*d).to_string()
}

/// A SHA-256 digest: an object's name. Fixed-size, so an index entry
/// holds it without an allocation and compares it in a few instructions.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Parse 64 hex digits (either case); None for anything else.
    pub fn from_hex(s: &str) -> Option<Digest> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let nibble = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
        let mut d = [0u8; 32];
        for (i, out) in d.iter_mut().enumerate() {
            *out = (nibble(b[2 * i])? << 4) | nibble(b[2 * i + 1])?;
        }
        Some(Digest(d))
    }

    /// The 64 lowercase hex digits, without an allocation.
    pub fn hex_bytes(&self) -> [u8; 64] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[(b >> 4) as usize];
            out[2 * i + 1] = HEX[(b & 15) as usize];
        }
        out
    }

    /// Its path in the store, relative to `objects/`: `ab/<62 hex>`.
    pub fn object_path(&self) -> String {
        let h = self.hex_bytes();
        let mut s = String::with_capacity(65);
        // Hex digits are ASCII.
        s.push_str(std::str::from_utf8(&h[..2]).unwrap_or_default());
        s.push('/');
        s.push_str(std::str::from_utf8(&h[2..]).unwrap_or_default());
        s
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&self.hex_bytes()).unwrap_or_default())
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(engine: Engine, data: &[u8], chunk: usize) -> String {
        let mut h = Sha256::with_engine(engine);
        for c in data.chunks(chunk.max(1)) {
            h.update(c);
        }
        if data.is_empty() {
            h.update(&[]);
        }
        hex(&h.finish())
    }

    #[test]
    fn digests_round_trip_through_hex_and_name_their_object() {
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let d = Digest::from_hex(hex).unwrap();
        assert_eq!(d.to_string(), hex);
        assert_eq!(Digest::from_hex(&hex.to_uppercase()), Some(d));
        assert_eq!(d.object_path(), format!("ba/{}", &hex[2..]));
        assert_eq!(Digest::from_hex(&hex[1..]), None);
        assert_eq!(Digest::from_hex(&format!("{}g", &hex[1..])), None);
        assert_eq!(Digest::from_hex(&format!("{}é", &hex[2..])), None);
    }

    /// FIPS 180-4 examples (NIST CSRC "SHA256.pdf", SHA2 additional vectors).
    fn vectors() -> Vec<(Vec<u8>, &'static str)> {
        vec![
            (
                b"abc".to_vec(),
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec(),
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (
                Vec::new(),
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                vec![0xbd],
                "68325720aabd7c82f30f554b313d0570c95accbb7dc4b5aae11204c08ffe732b",
            ),
            (
                vec![0xc9, 0x8c, 0x8e, 0x55],
                "7abc22c0ae5af26ce93dbb94433a0e0b2e119d014f8e7f65bd56c61ccccd9504",
            ),
            (
                vec![0u8; 55],
                "02779466cdec163811d078815c633f21901413081449002f24aa3e80f0b88ef7",
            ),
            (
                vec![0u8; 56],
                "d4817aa5497628e7c77e6b606107042bbba3130888c5f47a375e6179be789fbb",
            ),
            (
                vec![0u8; 57],
                "65a16cb7861335d5ace3c60718b5052e44660726da4cd13bb745381b235a1785",
            ),
            (
                vec![0u8; 64],
                "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b",
            ),
            (
                vec![0u8; 1000],
                "541b3e9daa09b20bf85fa273e5cbd3e80185aa4ec298e765db87742b70138a53",
            ),
            (
                vec![0x41; 1000],
                "c2e686823489ced2017f6059b8b239318b6364f6dcd835d0a519105a1eadd6e4",
            ),
            (
                vec![0x55; 1005],
                "f4d62ddec0f3dd90ea1380fa16a5ff8dc4c54b21740650f24afc4120903552b0",
            ),
            (
                std::iter::repeat_n(b'a', 1_000_000).collect(),
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
            ),
        ]
    }

    #[test]
    fn portable_sha256_matches_the_fips_180_4_vectors() {
        for (data, want) in vectors() {
            for chunk in [1, 7, 64, 1000, usize::MAX] {
                assert_eq!(
                    digest(Engine::Portable, &data, chunk),
                    want,
                    "len {}",
                    data.len()
                );
            }
        }
    }

    #[test]
    fn sha_extensions_match_the_vectors_and_the_portable_code() {
        if !crate::sys::has_sha_ni() {
            eprintln!("skipped: this CPU has no SHA extensions");
            return;
        }
        for (data, want) in vectors() {
            for chunk in [3, 64, 4096, usize::MAX] {
                assert_eq!(
                    digest(Engine::ShaNi, &data, chunk),
                    want,
                    "len {}",
                    data.len()
                );
            }
        }
        let mut x = 1u32;
        let data: Vec<u8> = (0..100_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 16) as u8
            })
            .collect();
        for len in [0, 1, 63, 64, 65, 127, 128, 129, 4095, 100_000] {
            assert_eq!(
                digest(Engine::ShaNi, &data[..len], 97),
                digest(Engine::Portable, &data[..len], len + 1)
            );
        }
    }
}
