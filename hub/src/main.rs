//! switchyard
fn main() {}
