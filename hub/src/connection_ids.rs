//! QUIC connection IDs that a restarted hub can recognise as its own and
//! never hands out twice.
//!
//! After a crash, agents keep sending on their old connections until they
//! learn those are gone. The new process answers such packets with a
//! stateless reset, which it may only do for connection IDs it could have
//! issued (anything else is garbage, and answering garbage would make the
//! hub a reflector), so the check must survive restarts: every ID carries a
//! tag keyed with the hub's persistent secret.
//!
//! The new process must also never give one of *its* connections an ID an
//! old connection still uses: a packet on the old connection would be
//! routed to the new one, fail to decrypt there and be dropped without a
//! reset, leaving its agent to wait out its idle timeout. quinn's
//! `HashedConnectionIdGenerator` has a 3-byte random part (16 million IDs),
//! and with 10,000 agents, each holding several IDs, a few of them did wait
//! 20 s after every restart in the fleet bench. Here the random part is 8
//! bytes: two processes of 50,000 IDs each collide about once in 10^10.

use quinn_proto::{ConnectionId, ConnectionIdGenerator, InvalidCid};
use ring::hmac;
use std::time::Duration;

/// Random bytes per connection ID.
const NONCE_LEN: usize = 8;
/// Bytes of keyed tag per connection ID.
const TAG_LEN: usize = 4;
/// Domain separation: the same secret keys stateless-reset tokens.
const CONTEXT: &[u8] = b"switchyard connection id";

/// Generates 12-byte IDs: 8 random bytes, then 4 bytes of HMAC-SHA256 over
/// them with the hub's persistent key.
pub(crate) struct ConnectionIds {
    key: hmac::Key,
}

impl ConnectionIds {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn tag(&self, nonce: &[u8]) -> [u8; TAG_LEN] {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(CONTEXT);
        context.update(nonce);
        let full = context.sign();
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(&full.as_ref()[..TAG_LEN]);
        tag
    }
}

impl ConnectionIdGenerator for ConnectionIds {
    fn generate_cid(&mut self) -> ConnectionId {
        let mut bytes = [0u8; NONCE_LEN + TAG_LEN];
        rand::fill(&mut bytes[..NONCE_LEN]);
        let tag = self.tag(&bytes[..NONCE_LEN]);
        bytes[NONCE_LEN..].copy_from_slice(&tag);
        ConnectionId::new(&bytes)
    }

    fn validate(&self, cid: &ConnectionId) -> Result<(), InvalidCid> {
        if cid.len() != NONCE_LEN + TAG_LEN {
            return Err(InvalidCid);
        }
        let (nonce, tag) = cid.split_at(NONCE_LEN);
        // Not secret-dependent timing worth guarding: a forged ID only earns
        // a stateless reset, smaller than the packet that asked for it.
        if self.tag(nonce)[..] == tag[..] {
            Ok(())
        } else {
            Err(InvalidCid)
        }
    }

    fn cid_len(&self) -> usize {
        NONCE_LEN + TAG_LEN
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_recognised_by_a_generator_with_the_same_secret_only() {
        let mut old = ConnectionIds::new(&[7; 32]);
        let restarted = ConnectionIds::new(&[7; 32]);
        let other = ConnectionIds::new(&[8; 32]);
        for _ in 0..100 {
            let cid = old.generate_cid();
            assert_eq!(cid.len(), old.cid_len());
            assert!(restarted.validate(&cid).is_ok());
            assert!(other.validate(&cid).is_err());
        }
        let mut garbage = [0u8; NONCE_LEN + TAG_LEN];
        rand::fill(&mut garbage[..]);
        assert!(restarted.validate(&ConnectionId::new(&garbage)).is_err());
        assert!(restarted.validate(&ConnectionId::new(&[1, 2, 3])).is_err());
    }

    #[test]
    fn two_processes_hand_out_no_common_id() {
        // What the fleet bench's restart does: 10,000 agents with a few IDs
        // each on the old process, as many on the new one. quinn's hashed
        // generator (3 random bytes) shared about 150 IDs here.
        let mut old = ConnectionIds::new(&[7; 32]);
        let mut new = ConnectionIds::new(&[7; 32]);
        let old_ids: HashSet<ConnectionId> = (0..50_000).map(|_| old.generate_cid()).collect();
        assert_eq!(old_ids.len(), 50_000);
        let shared = (0..50_000)
            .map(|_| new.generate_cid())
            .filter(|cid| old_ids.contains(cid))
            .count();
        assert_eq!(shared, 0);

        let mut old = quinn_proto::HashedConnectionIdGenerator::from_key(7);
        let mut new = quinn_proto::HashedConnectionIdGenerator::from_key(7);
        let old_ids: HashSet<ConnectionId> = (0..50_000).map(|_| old.generate_cid()).collect();
        let shared = (0..50_000)
            .map(|_| new.generate_cid())
            .filter(|cid| old_ids.contains(cid))
            .count();
        assert!(shared > 50, "quinn's generator shared {shared} IDs");
    }
}
