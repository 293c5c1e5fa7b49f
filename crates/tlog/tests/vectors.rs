//! Published test vectors reproduce: the RFC 6962/9162 Merkle vectors of transparency-dev/merkle
//! (`testonly/constants.go`, `testdata/inclusion`, `testdata/consistency`), the signed-note
//! vector of golang.org/x/mod (`sumdb/note/note_test.go`) and the C2SP cosignature examples.
#![allow(clippy::unwrap_used)]

use registry_tlog::cosign::{CosignatureSigner, CosignatureVerifier};
use registry_tlog::hashes::{appended, MapReader};
use registry_tlog::{open_checkpoint, LogKey};
use std::collections::HashMap;
use tlog_tiles::{
    check_record, check_tree, prove_record, prove_tree, record_hash, tree_hash, Hash,
};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn h(s: &str) -> Hash {
    Hash(hex(s).try_into().unwrap())
}

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn tree() -> MapReader {
    let leaves: Vec<Hash> = LEAVES.iter().map(|l| record_hash(&hex(l))).collect();
    MapReader(
        appended(0, HashMap::new(), &leaves)
            .unwrap()
            .into_iter()
            .collect(),
    )
}

#[test]
fn the_rfc_6962_roots_of_every_size_reproduce() {
    let tree = tree();
    for (size, root) in ROOTS.iter().enumerate() {
        assert_eq!(
            tree_hash(size as u64, &tree).unwrap(),
            h(root),
            "size {size}"
        );
    }
}

#[test]
fn the_published_inclusion_proofs_reproduce_and_check() {
    let tree = tree();
    let cases: [(u64, u64, &[&str]); 4] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, proof) in cases {
        let expected: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
        assert_eq!(
            prove_record(size, index, &tree).unwrap(),
            expected,
            "leaf {index} of {size}"
        );
        let leaf = record_hash(&hex(LEAVES[index as usize]));
        check_record(&expected, size, h(ROOTS[size as usize]), index, leaf).unwrap();
        let wrong = record_hash(b"not the leaf");
        assert!(check_record(&expected, size, h(ROOTS[size as usize]), index, wrong).is_err());
    }
}

#[test]
fn the_published_consistency_proofs_reproduce_and_check() {
    let tree = tree();
    let cases: [(u64, u64, &[&str]); 4] = [
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (old, new, proof) in cases {
        let expected: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
        assert_eq!(
            prove_tree(new, old, &tree).unwrap(),
            expected,
            "{old} -> {new}"
        );
        let (old_root, new_root) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        check_tree(&expected, new, new_root, old, old_root).unwrap();
        assert!(check_tree(&expected, new, new_root, old, new_root).is_err());
    }
}

const NEUMANN_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const NEUMANN_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";

/// x/mod's signed note, byte for byte: the crate we sign with makes the same signature line
/// (Ed25519 is deterministic) and opens the published one.
#[test]
fn the_go_signed_note_vector_reproduces() {
    let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    let line = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    let signer = signed_note::StandardSigner::new(NEUMANN_SKEY).unwrap();
    let mut note = signed_note::Note::new(text.as_bytes(), &[]).unwrap();
    note.add_sigs(&[&signer]).unwrap();
    assert_eq!(
        String::from_utf8(note.to_bytes()).unwrap(),
        format!("{text}\n{line}")
    );
    let published = signed_note::Note::from_bytes(format!("{text}\n{line}").as_bytes()).unwrap();
    let verifier = signed_note::StandardVerifier::new(NEUMANN_VKEY).unwrap();
    let list = signed_note::VerifierList::new(vec![Box::new(verifier)]);
    assert_eq!(published.verify(&list).unwrap().0.len(), 1);
}

#[test]
fn the_go_note_key_loads_with_the_same_verifier_key() {
    let key = LogKey::from_signer_key(NEUMANN_SKEY).unwrap();
    assert_eq!(key.verifier_key(), NEUMANN_VKEY);
    assert_eq!(key.origin(), "PeterNeumann");
}

#[test]
fn a_checkpoint_signed_by_the_go_note_key_opens_and_a_tampered_one_does_not() {
    let key = LogKey::from_signer_key(NEUMANN_SKEY).unwrap();
    let root = h(ROOTS[8]);
    let signed = key.sign(8, root).unwrap();
    let opened = open_checkpoint(&signed, NEUMANN_VKEY, &[]).unwrap();
    assert_eq!(
        (opened.origin.as_str(), opened.size, opened.root),
        ("PeterNeumann", 8, root)
    );
    let other_root = signed.replace(&base64_of(&root.0), &base64_of(&h(ROOTS[7]).0));
    assert!(open_checkpoint(&other_root, NEUMANN_VKEY, &[]).is_err());
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The C2SP tlog-checkpoint example, cosigned by a witness key derived from the x/mod test seed;
/// the cosignature line was computed with Python's `cryptography` package (an implementation
/// that is not this project's), so the two must agree byte for byte.
#[test]
fn a_cosignature_computed_elsewhere_verifies_and_ours_is_identical() {
    let checkpoint =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let line = "— witness.example.com/w1 1GorGwAAAABkGFDLJeR//pqzhnEKVvEm2wWbh2RJ6oru5+cUUfm5X9NnlaGr8aSH9QE5RVZD4QGlxl2F5UpVIIi94p178KLfqPPsAA==\n";
    let vkey = "witness.example.com/w1+d46a2b1b+BBpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    // The x/mod signer key's seed: 0x01 ‖ 32 bytes.
    let seed = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
            .unwrap()
    };
    let key = ed25519_dalek::SigningKey::from_bytes(&seed[1..].try_into().unwrap());
    let signer = CosignatureSigner::new("witness.example.com/w1", key, 1_679_315_147);
    assert_eq!(signer.verifier_key(), vkey);
    assert_eq!(registry_tlog::cosign::cosign(&signer, checkpoint), line);

    let verifier = CosignatureVerifier::new(vkey).unwrap();
    let note = signed_note::Note::from_bytes(format!("{checkpoint}\n{line}").as_bytes()).unwrap();
    let list = signed_note::VerifierList::new(vec![Box::new(verifier)]);
    let (verified, _) = note.verify(&list).unwrap();
    assert_eq!(verified.len(), 1);
}

#[test]
fn the_published_witness_key_parses_and_its_timestamp_reads() {
    CosignatureVerifier::new(
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
    )
    .unwrap();
    let sig = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==")
            .unwrap()
    };
    assert_eq!(
        CosignatureVerifier::timestamp(&sig[4..]),
        Some(1_727_964_367)
    );
}
