//! A message with every scalar field that has presence (`optional` in proto3) set,
//! found from the wire format alone: a canned reading then covers each metric a
//! `.proto` gains without being edited.

use prost::encoding::{encode_key, encode_varint, WireType};
use prost::Message;

/// Field numbers tried (the messages here number their fields densely from 1).
const MAX_TAG: u32 = 2047;

/// How a scalar is written for one wire type.
fn put(wire: WireType, v: u64, buf: &mut Vec<u8>) {
    match wire {
        WireType::Varint => encode_varint(v, buf),
        WireType::SixtyFourBit => buf.extend_from_slice(&(v as f64).to_le_bytes()),
        WireType::ThirtyTwoBit => buf.extend_from_slice(&(v as f32).to_le_bytes()),
        _ => unreachable!("scalars only"),
    }
}

/// `M` with every `optional` scalar field set: field `n` holds `n * 7 + 1` (a bool:
/// `true`; a float: that number), so no two such fields hold the same value and
/// none holds zero. Fields without presence (plain proto3 scalars, strings,
/// messages, repeated message fields) keep their defaults; a repeated scalar field
/// gets one element.
///
/// A field counts as having presence when writing a zero to it decodes to a
/// message unlike the default one: a plain proto3 scalar at zero stays default.
pub fn every_optional_scalar<M: Message + Default + PartialEq>() -> M {
    let mut buf = Vec::new();
    for tag in 1..=MAX_TAG {
        for wire in [
            WireType::Varint,
            WireType::SixtyFourBit,
            WireType::ThirtyTwoBit,
        ] {
            let mut zero = Vec::new();
            encode_key(tag, wire, &mut zero);
            put(wire, 0, &mut zero);
            if M::decode(zero.as_slice()).is_ok_and(|m| m != M::default()) {
                encode_key(tag, wire, &mut buf);
                put(wire, u64::from(tag) * 7 + 1, &mut buf);
                break;
            }
        }
    }
    M::decode(buf.as_slice()).expect("each field was decoded alone")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{GpuReading, HostSample};

    #[test]
    fn sets_the_optional_scalars_and_leaves_the_rest() {
        let r: GpuReading = every_optional_scalar();
        assert_eq!(r.memory_used_bytes, Some(2 * 7 + 1));
        assert_eq!(r.util_gpu_pct, Some(5 * 7 + 1));
        assert_eq!(r.remapped_rows_pending, Some(true));
        assert_eq!(r.pcie_replay_count, Some(32 * 7 + 1));
        // No presence: defaults.
        assert_eq!(r.index, 0);
        assert!(!r.energy_stale && !r.counters_stale);
        assert!(r.processes.is_empty() && r.errors.is_empty());
        assert_eq!(r.processes_t_ns, 0);
    }

    #[test]
    fn floats_and_repeated_scalars() {
        let h: HostSample = every_optional_scalar();
        // `cpu_per_core_pct` is a repeated float; the other scalars have no presence.
        assert_eq!(h.cpu_per_core_pct, vec![15.0]);
        assert_eq!(h.cpu_total_pct, 0.0);
        assert_eq!(h.load1, 0.0);
        assert!(h.net.is_empty());
    }
}
