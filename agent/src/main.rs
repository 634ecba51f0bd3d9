//! switchyard-agent
fn main() {}
