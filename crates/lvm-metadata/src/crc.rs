//! LVM's checksum (`calc_crc` in lvm2's `lib/misc/crc.c`): CRC-32 with the reflected
//! polynomial `0xedb88320`, started from [`INITIAL_CRC`] and with no final inversion. Computed
//! eight bytes at a time with tables built at compile time, as lvm2 does on x86_64.

/// The value every LVM checksum starts from (`INITIAL_CRC`).
pub const INITIAL_CRC: u32 = 0xf597_a6cf;

const POLYNOMIAL: u32 = 0xedb8_8320;

/// `TABLES[0]` is the byte table; `TABLES[k][i]` advances `TABLES[k - 1][i]` by one more byte.
const TABLES: [[u32; 256]; 8] = build_tables();

const fn build_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let previous = tables[k - 1][i];
            tables[k][i] = (previous >> 8) ^ tables[0][(previous & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    tables
}

/// LVM's `calc_crc(initial, bytes)`. A checksum over two pieces is
/// `calc_crc(calc_crc(INITIAL_CRC, first), second)`, as lvm2 checks wrapped metadata text.
pub fn calc_crc(initial: u32, bytes: &[u8]) -> u32 {
    #[cfg(test)]
    BYTES_CHECKSUMMED.with(|total| total.set(total.get() + bytes.len() as u64));
    let mut crc = initial;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let low = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ crc;
        let high = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        crc = TABLES[7][(low & 0xff) as usize]
            ^ TABLES[6][((low >> 8) & 0xff) as usize]
            ^ TABLES[5][((low >> 16) & 0xff) as usize]
            ^ TABLES[4][(low >> 24) as usize]
            ^ TABLES[3][(high & 0xff) as usize]
            ^ TABLES[2][((high >> 8) & 0xff) as usize]
            ^ TABLES[1][((high >> 16) & 0xff) as usize]
            ^ TABLES[0][(high >> 24) as usize];
    }
    for byte in chunks.remainder() {
        crc = TABLES[0][((crc ^ u32::from(*byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
thread_local! {
    /// Bytes [`calc_crc`] went over on this thread: the crate's unit tests read it to tell
    /// which checksums a read computed.
    pub(crate) static BYTES_CHECKSUMMED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain byte-at-a-time definition, to check the sliced one against.
    fn bitwise(initial: u32, bytes: &[u8]) -> u32 {
        let mut crc = initial;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLYNOMIAL
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn is_crc32_with_another_start_and_no_final_inversion() {
        // The standard CRC-32 check value: crc32("123456789") = 0xcbf43926 starts from all ones
        // and inverts at the end.
        assert_eq!(
            calc_crc(0xffff_ffff, b"123456789") ^ 0xffff_ffff,
            0xcbf4_3926
        );
        assert_eq!(calc_crc(INITIAL_CRC, b""), INITIAL_CRC);
    }

    #[test]
    fn known_answers_from_a_real_pv() {
        // `pvcreate --metadatasize 1m` + `vgcreate` (lvm2 2.03.16) on a loop device: the stored
        // checksums of its label and of its first metadata text.
        let seed = include_bytes!("../../../fuzz/corpus/lvm_pv/seed-1.bin");
        let label = &seed[512..1024];
        assert_eq!(calc_crc(INITIAL_CRC, &label[20..]), 0x12ad_bd1d);
        assert_eq!(
            u32::from_le_bytes(label[16..20].try_into().unwrap()),
            0x12ad_bd1d
        );
        let mda = &seed[4096..4608];
        assert_eq!(
            calc_crc(INITIAL_CRC, &mda[4..]),
            u32::from_le_bytes(mda[..4].try_into().unwrap())
        );
    }

    #[test]
    fn sliced_equals_bitwise_at_every_length_and_split() {
        let data: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in 0..data.len() {
            assert_eq!(
                calc_crc(INITIAL_CRC, &data[..len]),
                bitwise(INITIAL_CRC, &data[..len])
            );
        }
        let whole = calc_crc(INITIAL_CRC, &data);
        for split in [0, 1, 7, 8, 9, 150, 299, 300] {
            let (a, b) = data.split_at(split);
            assert_eq!(calc_crc(calc_crc(INITIAL_CRC, a), b), whole);
        }
    }
}
