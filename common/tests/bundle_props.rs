//! Property tests for bundles: order independence, round trips and refusal of damaged data.

use proptest::prelude::*;
use serde_json::{Value, json};
use switchyard_common::bundle::{Bundle, BundleError};

fn object() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("v1"), Just("apps/v1"), Just("batch/v1")],
        prop_oneof![Just("ConfigMap"), Just("Deployment"), Just("Job")],
        prop::option::of("[a-c]{1,2}"),
        "[a-d]{1,3}",
        prop::collection::btree_map("[a-z]{1,4}", "[ -~]{0,8}", 0..4),
    )
        .prop_map(|(api, kind, ns, name, data)| {
            let mut o =
                json!({"apiVersion": api, "kind": kind, "metadata": {"name": name}, "data": data});
            if let Some(ns) = ns {
                o["metadata"]["namespace"] = json!(ns);
            }
            o
        })
}

proptest! {
    #[test]
    fn permuted_objects_have_the_same_bytes_and_digest(
        (objects, shuffled) in prop::collection::vec(object(), 0..12)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    ) {
        let a = Bundle::new(objects);
        let b = Bundle::new(shuffled);
        prop_assert_eq!(a.canonical_bytes(), b.canonical_bytes());
        prop_assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn decode_returns_the_canonical_objects(objects in prop::collection::vec(object(), 0..12)) {
        let bundle = Bundle::new(objects);
        let encoded = bundle.encode(3).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = Bundle::decode(&encoded.compressed, &encoded.digest, encoded.canonical_len)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.canonical_bytes(), bundle.canonical_bytes());
        let mut expected = bundle.objects.clone();
        let mut got = back.objects;
        let key = |v: &Value| v.to_string();
        expected.sort_by_key(key);
        got.sort_by_key(key);
        prop_assert_eq!(got, expected);
    }

    /// zstd frames are not bit-exact: a few bits (the frame header's unused
    /// bit, slack in entropy tables) may flip without changing the output.
    /// What must hold is that damaged *content* is never accepted: decode
    /// either refuses or returns exactly the bytes the digest names.
    #[test]
    fn a_flipped_byte_never_yields_other_content(
        objects in prop::collection::vec(object(), 1..8),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let bundle = Bundle::new(objects);
        let encoded = bundle.encode(3).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut damaged = encoded.compressed.clone();
        let i = at.index(damaged.len());
        damaged[i] ^= 1 << bit;
        match Bundle::decode(&damaged, &encoded.digest, 1 << 20) {
            Ok(back) => prop_assert_eq!(back.canonical_bytes(), bundle.canonical_bytes()),
            Err(e) => prop_assert!(
                matches!(e, BundleError::Corrupt(_) | BundleError::DigestMismatch { .. } | BundleError::TooLarge { .. }),
                "{:?}", e
            ),
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        // Only the absence of a panic is checked: any outcome is an answer.
        let _ = Bundle::decode(&bytes, &Bundle::default().digest(), 4096);
        let mut framed = vec![0x28, 0xb5, 0x2f, 0xfd];
        framed.extend_from_slice(&bytes);
        let _ = Bundle::decode(&framed, &Bundle::default().digest(), 4096);
    }
}
