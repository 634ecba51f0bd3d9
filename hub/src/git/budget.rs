//! The fetch limits (pack bytes, object count), watched through gix's
//! progress counters while a pack arrives: a counter over its limit raises
//! the interrupt gix checks on every read, and the first limit reached
//! becomes the fetch's error. Also the progress reports of a fetch.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use gix::progress::{MessageLevel, StepShared, Unit};

use super::{FetchLimits, FetchProgress};

/// gix's progress ids (gix-pack): bytes of the pack read from the remote,
/// and objects indexed (initialized with the count the pack's header
/// announces, before any object is decoded).
pub(super) const READ_PACK_BYTES: gix::progress::Id = *b"BWRB";
pub(super) const INDEX_OBJECTS: gix::progress::Id = *b"IWIO";

/// Progress nodes handed to gix; the calling thread polls their counters
/// (gix updates some through shared atomics, not through calls).
#[derive(Clone)]
pub(super) struct Registry {
    pub(super) nodes: Arc<Mutex<Vec<Arc<NodeState>>>>,
    pub(super) budget: Arc<Budget>,
}

pub(super) struct NodeState {
    name: Mutex<String>,
    /// gix's id of what the node counts, if it said.
    id: gix::progress::Id,
    max: Mutex<Option<usize>>,
    step: StepShared,
}

/// The fetch limits, watched through gix's progress counters: a counter
/// over its limit raises `interrupt`, which gix checks on every read of the
/// pack and between objects.
pub(super) struct Budget {
    pub(super) limits: FetchLimits,
    pub(super) interrupt: AtomicBool,
    /// The first limit reached.
    pub(super) hit: Mutex<Option<Hit>>,
}

pub(super) struct Hit {
    pub(super) what: String,
    pub(super) limit: u64,
    pub(super) flag: &'static str,
}

/// The limit that `value` of the counter `id` breaks, if any: `announced`
/// is a total gix announces ahead (`init`), else `value` is a count so far.
pub(super) fn limit_broken(
    limits: &FetchLimits,
    id: gix::progress::Id,
    value: u64,
    announced: bool,
) -> Option<Hit> {
    match id {
        READ_PACK_BYTES if !announced && value > limits.max_pack_bytes => Some(Hit {
            what: format!("the pack reached {value} bytes"),
            limit: limits.max_pack_bytes,
            flag: "max-pack-bytes",
        }),
        INDEX_OBJECTS if announced && value > limits.max_objects => Some(Hit {
            what: format!("the pack holds {value} objects"),
            limit: limits.max_objects,
            flag: "max-objects",
        }),
        _ => None,
    }
}

impl Budget {
    pub(super) fn check(&self, id: gix::progress::Id, value: u64, announced: bool) {
        if let Some(hit) = limit_broken(&self.limits, id, value, announced) {
            let mut first = self.hit.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert(hit);
            self.interrupt.store(true, Ordering::SeqCst);
        }
    }
}

impl Registry {
    pub(super) fn new(limits: FetchLimits) -> Self {
        Self {
            nodes: Arc::default(),
            budget: Arc::new(Budget {
                limits,
                interrupt: AtomicBool::new(false),
                hit: Mutex::new(None),
            }),
        }
    }

    pub(super) fn node(&self, name: &str) -> Node {
        self.node_with_id(name, gix::progress::UNKNOWN)
    }

    pub(super) fn node_with_id(&self, name: &str, id: gix::progress::Id) -> Node {
        let state = Arc::new(NodeState {
            name: Mutex::new(name.to_owned()),
            id,
            max: Mutex::new(None),
            step: Arc::new(AtomicUsize::new(0)),
        });
        self.nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(state.clone());
        Node {
            registry: self.clone(),
            state,
        }
    }

    /// Check every counter against the limits, for those gix advances
    /// through their shared atomic rather than through calls.
    pub(super) fn enforce(&self) {
        let nodes: Vec<Arc<NodeState>> =
            self.nodes.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for node in nodes {
            let step = node.step.load(Ordering::Relaxed) as u64;
            self.budget.check(node.id, step, false);
        }
    }

    /// Report the nodes that changed since `last`.
    pub(super) fn report(
        &self,
        last: &mut Vec<Option<FetchProgress>>,
        progress: &dyn Fn(FetchProgress),
    ) {
        let nodes: Vec<Arc<NodeState>> =
            self.nodes.lock().unwrap_or_else(|e| e.into_inner()).clone();
        last.resize(nodes.len(), None);
        for (node, last) in nodes.iter().zip(last.iter_mut()) {
            let now = FetchProgress {
                stage: node.name.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                done: node.step.load(Ordering::Relaxed) as u64,
                total: node
                    .max
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .map(|m| m as u64),
            };
            if now.stage.is_empty() || last.as_ref() == Some(&now) {
                continue;
            }
            progress(now.clone());
            *last = Some(now);
        }
    }
}

pub(super) struct Node {
    pub(super) registry: Registry,
    pub(super) state: Arc<NodeState>,
}

impl Node {
    pub(super) fn add_child_named(&mut self, name: &str) -> Node {
        self.registry.node(name)
    }

    fn counted(&self, step: usize) {
        self.registry
            .budget
            .check(self.state.id, step as u64, false);
    }
}

impl gix::Count for Node {
    fn set(&self, step: usize) {
        self.state.step.store(step, Ordering::Relaxed);
        self.counted(step);
    }
    fn step(&self) -> usize {
        self.state.step.load(Ordering::Relaxed)
    }
    fn inc_by(&self, step: usize) {
        let now = self.state.step.fetch_add(step, Ordering::Relaxed) + step;
        self.counted(now);
    }
    fn counter(&self) -> StepShared {
        self.state.step.clone()
    }
}

impl gix::Progress for Node {
    fn init(&mut self, max: Option<usize>, _unit: Option<Unit>) {
        *self.state.max.lock().unwrap_or_else(|e| e.into_inner()) = max;
        self.state.step.store(0, Ordering::Relaxed);
        if let Some(max) = max {
            self.registry.budget.check(self.state.id, max as u64, true);
        }
    }
    fn set_max(&mut self, max: Option<usize>) -> Option<usize> {
        std::mem::replace(
            &mut *self.state.max.lock().unwrap_or_else(|e| e.into_inner()),
            max,
        )
    }
    fn max(&self) -> Option<usize> {
        *self.state.max.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn set_name(&mut self, name: String) {
        *self.state.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
    }
    fn name(&self) -> Option<String> {
        Some(
            self.state
                .name
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
    fn id(&self) -> gix::progress::Id {
        gix::progress::UNKNOWN
    }
    fn message(&self, _level: MessageLevel, _message: String) {}
}

impl gix::NestedProgress for Node {
    type SubProgress = Node;
    fn add_child(&mut self, name: impl Into<String>) -> Node {
        self.registry.node(&name.into())
    }
    fn add_child_with_id(&mut self, name: impl Into<String>, id: gix::progress::Id) -> Node {
        self.registry.node_with_id(&name.into(), id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limits_stop_a_pack_by_bytes_read_and_by_announced_objects() {
        let limits = FetchLimits {
            max_pack_bytes: 1000,
            max_objects: 10,
            max_object_bytes: 1 << 20,
            stall_timeout: Duration::from_secs(60),
        };
        assert!(limit_broken(&limits, READ_PACK_BYTES, 1000, false).is_none());
        let hit = limit_broken(&limits, READ_PACK_BYTES, 1001, false).unwrap();
        assert_eq!((hit.limit, hit.flag), (1000, "max-pack-bytes"));
        assert!(hit.what.contains("1001 bytes"), "{}", hit.what);
        assert!(limit_broken(&limits, INDEX_OBJECTS, 10, true).is_none());
        let hit = limit_broken(&limits, INDEX_OBJECTS, 11, true).unwrap();
        assert_eq!((hit.limit, hit.flag), (10, "max-objects"));
        // Objects counted one by one are checked once, ahead; other
        // counters (decompressed bytes, refs) are not limits.
        assert!(limit_broken(&limits, INDEX_OBJECTS, 11, false).is_none());
        assert!(limit_broken(&limits, *b"IWDB", u64::MAX, false).is_none());
        assert!(limit_broken(&limits, gix::progress::UNKNOWN, u64::MAX, true).is_none());

        let budget = Registry::new(limits).budget;
        budget.check(INDEX_OBJECTS, 5, true);
        assert!(!budget.interrupt.load(Ordering::SeqCst));
        budget.check(READ_PACK_BYTES, 2000, false);
        budget.check(INDEX_OBJECTS, 50, true);
        assert!(budget.interrupt.load(Ordering::SeqCst));
        let first = budget.hit.lock().unwrap().take().unwrap();
        assert_eq!(
            first.flag, "max-pack-bytes",
            "the first limit reached is reported"
        );
    }
}
