//! # lti-aws
//!
//! The AWS side of lti-lambda: [`dynamo::DynamoStore`] implements every storage port
//! of the core on one DynamoDB table, [`kms::KmsSigner`] signs with a KMS key that never
//! leaves KMS, [`calls::CallCounter`] counts SDK calls, and [`lambda`] runs the shared
//! handlers under `lambda_http`.

pub mod calls;
pub mod config;
pub mod dynamo;
pub mod dynamo_admin;
pub mod dynamo_tokens;
pub mod functions;
pub mod kms;
pub mod lambda;
pub mod provision;
