//! What a finished conversation amounts to.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::script::{FieldType, Script};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuccessEvaluation {
    Successful,
    PartiallySuccessful,
    Unsuccessful,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ObjectiveResult {
    pub id: String,
    pub description: String,
    pub achieved: bool,
    /// Why: the step reached or the words said.
    pub evidence: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Analysis {
    /// The brain that produced this analysis (`rules`, `openai`, `hybrid`).
    pub brain: String,
    pub summary: String,
    pub objectives: Vec<ObjectiveResult>,
    /// Per the script's data-collection schema; a field that could not be read is null.
    #[schema(value_type = Object)]
    pub structured_data: Map<String, Value>,
    pub success_evaluation: SuccessEvaluation,
    /// 1 (poor) to 5 (excellent).
    pub rating: u8,
}

impl SuccessEvaluation {
    /// From objectives met: all → successful, some → partial, none → unsuccessful.
    pub fn from_objectives(achieved: usize, total: usize, flow_succeeded: Option<bool>) -> Self {
        match (achieved, total) {
            (_, 0) => match flow_succeeded {
                Some(true) => SuccessEvaluation::Successful,
                Some(false) | None => SuccessEvaluation::Unsuccessful,
            },
            (a, t) if a == t => SuccessEvaluation::Successful,
            (0, _) => SuccessEvaluation::Unsuccessful,
            _ => SuccessEvaluation::PartiallySuccessful,
        }
    }
}

/// Whether a collected value is the one expected: numbers by value (1200000 and 1200000.0 are the
/// same amount), anything else exactly.
pub fn same_value(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).is_some_and(|(a, b)| (a - b).abs() < 1e-9),
        _ => want == got,
    }
}

/// Keeps only values of the declared types; anything else becomes null. Brains' extractions pass
/// through this, so structured data is always what the schema says.
pub fn typed_data(script: &Script, raw: &Map<String, Value>) -> Map<String, Value> {
    script
        .data_collection
        .iter()
        .map(|field| {
            let value = raw.get(&field.name).cloned().unwrap_or(Value::Null);
            let ok = match (field.field_type, &value) {
                (_, Value::Null) => true,
                (FieldType::String, Value::String(_)) => true,
                (FieldType::Number, Value::Number(_)) => true,
                (FieldType::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
                (FieldType::Boolean, Value::Bool(_)) => true,
                (FieldType::Date, Value::String(s)) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
                (FieldType::Datetime, Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
                (FieldType::Enum, Value::String(s)) => field.values.contains(s),
                _ => false,
            };
            (field.name.clone(), if ok { value } else { Value::Null })
        })
        .collect()
}
