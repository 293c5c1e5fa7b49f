//! Tree arithmetic over stored hashes, without a database: which hashes appending a batch needs,
//! the hashes it adds, and proofs read in two steps (ask `tlog_tiles` which hashes it wants,
//! fetch them, then let it compute). All of it is the Go sumdb `tlog` algorithm as ported by
//! `tlog_tiles`; nothing here re-implements a hash rule.

use std::cell::RefCell;
use std::collections::HashMap;
use tlog_tiles::{stored_hash_index, stored_hashes_for_record_hash, Error, Hash, HashReader};

/// Hashes from a map; an index it does not hold is an error.
#[derive(Debug, Default)]
pub struct MapReader(pub HashMap<u64, Hash>);

impl HashReader for MapReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Error> {
        indexes
            .iter()
            .map(|i| self.0.get(i).copied().ok_or(Error::IndexesNotInTree))
            .collect()
    }
}

/// Answers with placeholder hashes and remembers what was asked: the first step of a read.
#[derive(Debug, Default)]
pub struct Recorder(RefCell<Vec<u64>>);

impl HashReader for Recorder {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Error> {
        self.0.borrow_mut().extend_from_slice(indexes);
        Ok(vec![Hash([0; 32]); indexes.len()])
    }
}

/// The stored hashes `f` reads, found by running it once over placeholders. `f` must ask for
/// indexes that depend only on tree sizes, as `tree_hash`, `prove_record` and `prove_tree` do.
pub fn indexes_read_by<T>(f: impl FnOnce(&Recorder) -> Result<T, Error>) -> Vec<u64> {
    let recorder = Recorder::default();
    let _ = f(&recorder);
    recorder.0.into_inner()
}

/// The roots of the complete subtrees that make up a tree of `size` leaves: the only earlier
/// hashes that appending leaves `size..` reads.
pub fn frontier(size: u64) -> Vec<u64> {
    (0..64u8)
        .rev()
        .filter(|level| size >> level & 1 == 1)
        .map(|level| stored_hash_index(level, (size >> level) - 1))
        .collect()
}

/// The stored hashes that leaves `from..from + leaf_hashes.len()` add, given the hashes at
/// [`frontier`]`(from)`.
pub fn appended(
    from: u64,
    frontier: HashMap<u64, Hash>,
    leaf_hashes: &[Hash],
) -> Result<Vec<(u64, Hash)>, Error> {
    let mut known = MapReader(frontier);
    let mut out = Vec::with_capacity(leaf_hashes.len() * 2);
    for (n, leaf) in (from..).zip(leaf_hashes) {
        let start = stored_hash_index(0, n);
        let hashes = stored_hashes_for_record_hash(n, *leaf, &known)?;
        for (index, hash) in (start..).zip(hashes) {
            known.0.insert(index, hash);
            out.push((index, hash));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlog_tiles::{record_hash, tree_hash};

    #[test]
    fn given_batches_of_any_split_when_appended_then_the_root_is_the_same_as_in_one_go() {
        let leaves: Vec<Hash> = (0..37u32).map(|i| record_hash(&i.to_be_bytes())).collect();
        let whole = appended(0, HashMap::new(), &leaves).unwrap();
        let all: HashMap<u64, Hash> = whole.iter().copied().collect();
        for split in [1u64, 2, 5, 16, 31, 36] {
            let first = appended(0, HashMap::new(), &leaves[..split as usize]).unwrap();
            let stored: HashMap<u64, Hash> = first.into_iter().collect();
            let edge = frontier(split)
                .into_iter()
                .map(|i| (i, stored[&i]))
                .collect();
            let rest = appended(split, edge, &leaves[split as usize..]).unwrap();
            let mut merged = stored;
            merged.extend(rest);
            assert_eq!(merged, all, "split at {split}");
        }
        let root = tree_hash(37, &MapReader(all)).unwrap();
        assert_ne!(root, Hash([0; 32]));
    }

    #[test]
    fn given_a_proof_when_its_indexes_are_recorded_then_exactly_those_are_read() {
        let leaves: Vec<Hash> = (0..10u32).map(|i| record_hash(&i.to_be_bytes())).collect();
        let all: HashMap<u64, Hash> = appended(0, HashMap::new(), &leaves)
            .unwrap()
            .into_iter()
            .collect();
        let wanted = indexes_read_by(|r| tlog_tiles::prove_record(10, 3, r));
        let some = wanted.iter().map(|i| (*i, all[i])).collect();
        let from_some = tlog_tiles::prove_record(10, 3, &MapReader(some)).unwrap();
        assert_eq!(
            from_some,
            tlog_tiles::prove_record(10, 3, &MapReader(all)).unwrap()
        );
    }
}
