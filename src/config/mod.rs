//! The configuration: the command line ([`flags`]), the TOML `--config.file` ([`mod@file`]) and
//! `nova.conf` ([`nova_conf`]), resolved into one validated [`resolve::Config`] ([`resolve`]).

pub mod file;
pub mod flags;
pub mod nova_conf;
pub mod resolve;
