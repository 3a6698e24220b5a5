//! Reading a container's query and answering the ones cordon refuses.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

/// The question of a DNS query: its id, name and type. `None` for anything
/// that is not a well-formed query with exactly one question.
pub fn question(query: &[u8]) -> Option<(u16, Name, RecordType)> {
    let m = Message::from_vec(query).ok()?;
    if m.metadata.message_type != MessageType::Query || m.queries.len() != 1 {
        return None;
    }
    let q = &m.queries[0];
    Some((m.metadata.id, q.name.clone(), q.query_type))
}

/// The answer to a refused query: same id and question, recursion flags
/// copied, no records, REFUSED (or NXDOMAIN when `nxdomain`). `None` when
/// the query cannot be read (it is then dropped, not answered).
pub fn refusal(query: &[u8], nxdomain: bool) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    if q.metadata.message_type != MessageType::Query {
        return None;
    }
    let code = if nxdomain {
        ResponseCode::NXDomain
    } else {
        ResponseCode::Refused
    };
    let mut r = Message::error_msg(q.metadata.id, q.metadata.op_code, code);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_queries(q.queries);
    r.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{OpCode, Query};

    fn query(name: &str) -> Vec<u8> {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    #[test]
    fn a_refusal_answers_the_same_question() {
        let q = query("blocked.example.");
        let (id, name, ty) = question(&q).unwrap();
        assert_eq!((id, ty), (0x1234, RecordType::A));
        assert_eq!(name, Name::from_ascii("BLOCKED.example.").unwrap());
        let r = Message::from_vec(&refusal(&q, false).unwrap()).unwrap();
        assert_eq!(r.metadata.id, 0x1234);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert_eq!(r.queries.len(), 1);
        assert!(r.answers.is_empty());
        let r = Message::from_vec(&refusal(&q, true).unwrap()).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn garbage_and_responses_are_not_questions() {
        assert!(question(&[]).is_none());
        assert!(question(&[0xff; 12]).is_none());
        assert!(refusal(&[1, 2, 3], false).is_none());
        let mut resp = Message::from_vec(&query("a.test.")).unwrap();
        resp.metadata.message_type = MessageType::Response;
        assert!(question(&resp.to_vec().unwrap()).is_none());
    }
}
