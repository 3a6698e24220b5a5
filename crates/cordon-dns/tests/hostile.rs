//! Bytes from containers and upstream servers may be anything: the
//! parsing path never panics on them.

use cordon_dns::answer::{addresses, Limits};
use cordon_dns::hickory_proto::op::Message;
use cordon_dns::hickory_proto::rr::Name;
use cordon_dns::reply::{question, refusal};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = question(&bytes);
        let _ = refusal(&bytes, false);
        if let Ok(m) = Message::from_vec(&bytes) {
            let q = Name::from_ascii("a.test.").unwrap();
            let got = addresses(&q, &m, &Limits::default());
            prop_assert!(got.len() <= Limits::default().max_addrs);
        }
    }

    /// A well-formed query with its bytes flipped: still no panic.
    #[test]
    fn mutated_queries_never_panic(pos in 0usize..40, val in any::<u8>()) {
        let mut m = Message::new(9, cordon_dns::hickory_proto::op::MessageType::Query, cordon_dns::hickory_proto::op::OpCode::Query);
        m.add_query(cordon_dns::hickory_proto::op::Query::query(
            Name::from_ascii("www.example.org.").unwrap(),
            cordon_dns::hickory_proto::rr::RecordType::AAAA,
        ));
        let mut bytes = m.to_vec().unwrap();
        let i = pos % bytes.len();
        bytes[i] = val;
        let _ = question(&bytes);
        let _ = refusal(&bytes, true);
    }
}
