use rand::RngCore;
use registry_domain::{CertificateId, FamilyId, MemberId};
use uuid::Uuid;

pub fn new_family_id() -> FamilyId {
    FamilyId(Uuid::now_v7())
}

pub fn new_member_id() -> MemberId {
    MemberId(Uuid::now_v7())
}

/// 128 random bits from the operating system's generator, in UUID form (version 4 layout, so
/// 122 of them are random). Nothing about the family or the time can be read from it.
pub fn new_certificate_id() -> CertificateId {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    CertificateId(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// The human-readable certificate number, `77-XXXX-XXXX-XXXX`: the region code of Moscow and 60
/// random bits of the family id (UUIDv7 ends in 62 random bits) in Crockford base32, which has no
/// I, L, O or U to misread.
pub fn certificate_number(family: FamilyId) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let bits = u64::from_be_bytes(family.0.as_bytes()[8..16].try_into().unwrap_or([0; 8]));
    let mut out = String::from("77");
    for i in 0..12 {
        if i % 4 == 0 {
            out.push('-');
        }
        let shift = 55 - 5 * i;
        let index = usize::try_from((bits >> shift) & 31).unwrap_or(0);
        out.push(char::from(ALPHABET[index]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_numbers_are_grouped_and_differ_between_families() {
        let a = certificate_number(new_family_id());
        let b = certificate_number(new_family_id());
        assert_eq!(a.len(), "77-XXXX-XXXX-XXXX".len());
        assert!(a.starts_with("77-"));
        assert_ne!(a, b);
    }

    #[test]
    fn certificate_ids_are_random_not_time_ordered() {
        let id = new_certificate_id();
        assert_eq!(id.0.get_version_num(), 4);
        assert_ne!(id, new_certificate_id());
    }
}
