//! Matching on mainline kernel network events (`net_dev_queue` / `netif_receive_skb` with
//! the TCP header fields of lttng-modules >= 2.9, nested in the `network_header` and
//! `transport_header` variants) over two small CTF traces written here, one per host.

use sextant_trace::sync::{synchronize, MatchPlan, SyncQuality, TraceSyncStatus};
use sextant_trace::Experiment;
use std::path::Path;
use std::sync::atomic::AtomicU64;

const TRACE_UUID: [u8; 16] = [
    0x2a, 0x64, 0x22, 0xd0, 0x6c, 0xee, 0x11, 0xe0, 0x8c, 0x08, 0xcb, 0x07, 0xd7, 0xb3, 0xa5, 0x64,
];

fn uuid_text(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// TSDL shaped like lttng-modules 2.10's network events (fields trimmed to what matters).
fn metadata(hostname: &str, clock_uuid: &str) -> String {
    let net_fields = r#"
		uint64_t _skbaddr;
		uint32_t _len;
		string _name;
		enum : uint8_t { "_unknown" = 0, "_ipv4" = 4, "_ipv6" = 6 } _network_header_type;
		variant <_network_header_type> {
			struct { } _unknown;
			struct {
				uint8_t _protocol;
				uint8_t _saddr[4];
				uint8_t _daddr[4];
				enum : uint8_t { "_unknown" = 0, "_tcp" = 6, "_udp" = 17 } _transport_header_type;
				variant <_transport_header_type> {
					struct { } _unknown;
					struct {
						uint16_t _source_port;
						uint16_t _dest_port;
						uint32_t _seq;
						uint32_t _ack_seq;
						uint8_t _data_offset;
						uint16_t _flags;
					} _tcp;
					struct { uint16_t _source_port; uint16_t _dest_port; } _udp;
				} _transport_header;
			} _ipv4;
			struct {
				uint8_t _saddr[16];
				uint8_t _daddr[16];
				enum : uint8_t { "_unknown" = 0, "_tcp" = 6, "_udp" = 17 } _transport_header_type;
				variant <_transport_header_type> {
					struct { } _unknown;
					struct {
						uint16_t _source_port;
						uint16_t _dest_port;
						uint32_t _seq;
						uint32_t _ack_seq;
						uint8_t _data_offset;
						uint16_t _flags;
					} _tcp;
					struct { uint16_t _source_port; uint16_t _dest_port; } _udp;
				} _transport_header;
			} _ipv6;
		} _network_header;"#;
    format!(
        r#"/* CTF 1.8 */
typealias integer {{ size = 8; align = 8; signed = false; }} := uint8_t;
typealias integer {{ size = 16; align = 8; signed = false; }} := uint16_t;
typealias integer {{ size = 32; align = 8; signed = false; }} := uint32_t;
typealias integer {{ size = 64; align = 8; signed = false; }} := uint64_t;

trace {{
	major = 1;
	minor = 8;
	uuid = "{trace_uuid}";
	byte_order = le;
	packet.header := struct {{
		uint32_t magic;
		uint8_t  uuid[16];
		uint32_t stream_id;
	}};
}};

env {{
	hostname = "{hostname}";
	domain = "kernel";
	tracer_name = "lttng-modules";
	tracer_major = 2;
	tracer_minor = 10;
}};

clock {{
	name = "monotonic";
	uuid = "{clock_uuid}";
	description = "Monotonic Clock";
	freq = 1000000000;
	offset_s = 0;
	offset = 0;
	absolute = FALSE;
}};

typealias integer {{ size = 64; align = 8; signed = false; map = clock.monotonic.value; }} := uint64_clock_monotonic_t;

stream {{
	id = 0;
	event.header := struct {{
		uint32_t id;
		uint64_clock_monotonic_t timestamp;
	}};
	packet.context := struct {{
		uint64_clock_monotonic_t timestamp_begin;
		uint64_clock_monotonic_t timestamp_end;
		uint64_t content_size;
		uint64_t packet_size;
		uint32_t cpu_id;
	}};
}};

event {{
	name = "net_dev_queue";
	id = 0;
	stream_id = 0;
	fields := struct {{{net_fields}
	}};
}};

event {{
	name = "netif_receive_skb";
	id = 1;
	stream_id = 0;
	fields := struct {{{net_fields}
	}};
}};
"#,
        trace_uuid = uuid_text(&TRACE_UUID),
    )
}

/// One network event: (timestamp, class id 0 = send / 1 = receive, seq, ack_seq, flags,
/// ipv6?).
type NetEvent = (u64, u32, u32, u32, u16, bool);

fn payload(out: &mut Vec<u8>, (ts, id, seq, ack, flags, ipv6): NetEvent) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&0xffff_8800_1234_5678u64.to_le_bytes()); // skbaddr
    out.extend_from_slice(&1500u32.to_le_bytes()); // len
    out.extend_from_slice(b"eth0\0");
    if ipv6 {
        out.push(6);
        out.extend_from_slice(&[0xfe; 16]);
        out.extend_from_slice(&[0xfd; 16]);
    } else {
        out.push(4);
        out.push(6); // protocol
        out.extend_from_slice(&[10, 0, 0, 1]);
        out.extend_from_slice(&[10, 0, 0, 2]);
    }
    out.push(6); // transport: tcp
    out.extend_from_slice(&22u16.to_le_bytes());
    out.extend_from_slice(&40_000u16.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&ack.to_le_bytes());
    out.push(5);
    out.extend_from_slice(&flags.to_le_bytes());
}

/// A UDP packet: no TCP header, must not be matched.
fn udp_payload(out: &mut Vec<u8>, ts: u64, id: u32) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    out.extend_from_slice(&60u32.to_le_bytes());
    out.extend_from_slice(b"eth0\0");
    out.push(4);
    out.push(17);
    out.extend_from_slice(&[10, 0, 0, 1]);
    out.extend_from_slice(&[10, 0, 0, 2]);
    out.push(17);
    out.extend_from_slice(&53u16.to_le_bytes());
    out.extend_from_slice(&53u16.to_le_bytes());
}

/// Writes a one-stream, one-packet trace holding `events` (sorted by time).
fn write_trace(
    dir: &Path,
    hostname: &str,
    clock_uuid: &[u8; 16],
    events: &[NetEvent],
    udp_at: u64,
) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("metadata"),
        metadata(hostname, &uuid_text(clock_uuid)),
    )
    .unwrap();
    let mut body = Vec::new();
    let mut udp_written = false;
    for &e in events {
        if e.0 >= udp_at && !udp_written {
            udp_payload(&mut body, udp_at, 0);
            udp_written = true;
        }
        payload(&mut body, e);
    }
    let mut packet = Vec::new();
    packet.extend_from_slice(&0xC1FC_1FC1u32.to_le_bytes());
    packet.extend_from_slice(&TRACE_UUID);
    packet.extend_from_slice(&0u32.to_le_bytes());
    let header_len = packet.len() + 8 * 4 + 4;
    let total_bits = ((header_len + body.len()) * 8) as u64;
    packet.extend_from_slice(&events.first().map_or(0, |e| e.0.min(udp_at)).to_le_bytes());
    packet.extend_from_slice(&events.last().map_or(0, |e| e.0).to_le_bytes());
    packet.extend_from_slice(&total_bits.to_le_bytes());
    packet.extend_from_slice(&total_bits.to_le_bytes());
    packet.extend_from_slice(&0u32.to_le_bytes());
    packet.extend_from_slice(&body);
    std::fs::write(dir.join("channel0_0"), packet).unwrap();
}

#[test]
fn tcp_headers_of_mainline_network_events_are_matched_across_hosts() {
    let tmp = std::env::temp_dir().join(format!("sextant-sync-net-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    // host "a": reference clock; host "b": 20 ppm fast, 2 s ahead.
    let b_of = |t: u64| t + t / 50_000 + 2_000_000_000;
    let start = 1_500_000_000_000_000_000u64 / 1000; // a plausible monotonic value
    let (mut a_events, mut b_events) = (Vec::new(), Vec::new());
    let mut x: u64 = 0x1234_5678;
    for i in 0..120u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = start + i as u64 * 10_000_000 + x % 1_000_000;
        let latency = 30_000 + x % 70_000;
        let (seq, ack, flags) = (1000 + i * 1448, 77 + i, 0x18u16);
        let ipv6 = i % 3 == 0;
        if i % 2 == 0 {
            a_events.push((t, 0, seq, ack, flags, ipv6));
            b_events.push((b_of(t + latency), 1, seq, ack, flags, ipv6));
        } else {
            b_events.push((b_of(t), 0, seq, ack, flags, ipv6));
            a_events.push((t + latency, 1, seq, ack, flags, ipv6));
        }
    }
    a_events.sort();
    b_events.sort();
    let (uuid_a, uuid_b) = ([0x11u8; 16], [0x22u8; 16]);
    write_trace(
        &tmp.join("a"),
        "host-a",
        &uuid_a,
        &a_events,
        start + 5_000_000,
    );
    write_trace(
        &tmp.join("b"),
        "host-b",
        &uuid_b,
        &b_events,
        b_of(start + 5_000_000),
    );

    let mut exp = Experiment::open(&[tmp.join("b"), tmp.join("a")]).unwrap();
    let plan = MatchPlan::new(&exp);
    assert_eq!(
        plan.class_count(),
        4,
        "both network classes of both traces are matched on"
    );
    let result = synchronize(&mut exp, &AtomicU64::new(0)).unwrap();
    assert!(exp.warnings().is_empty(), "{:?}", exp.warnings());
    assert_eq!(result.matches, 120);
    assert_eq!(result.quality_between(0, 1), SyncQuality::Accurate);
    // host a's clock uuid (0x11...) sorts first: trace 1 is the reference
    assert_eq!(result.traces[1].status, TraceSyncStatus::Reference);
    let formula = &result.traces[0].transform;
    for i in 0..120u64 {
        let t = start + i * 10_000_000;
        let err = (formula.apply(b_of(t) as i64) - t as i64).abs();
        assert!(err <= 100_000, "error {err} ns beyond the largest latency");
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
