//! The table: both adapters store the same shapes (the contract), dynalite smoke test, and the stack's secret from Secrets Manager (moto).

mod contract;
mod dynamo_smoke;
mod qrstat;
mod secrets_manager;
mod slow_table;
