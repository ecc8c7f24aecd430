pub mod common;
pub mod demo;
pub mod export;
pub mod nodes;
pub mod record;
pub mod runs;
pub mod sim;
pub mod watch;
