use crate as tollgate_controller;
include!("/tmp/golden_body.rs");
