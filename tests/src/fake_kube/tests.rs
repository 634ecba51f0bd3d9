//! Raw-HTTP tests of the fake API server.
