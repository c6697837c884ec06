//! sip-core: the sans-IO SIP engine.
