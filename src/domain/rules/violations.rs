//! The bad fields of one request, collected so that one answer names
//! them all, and bounded so that the answer stays small.

/// One bad field: its path and the rule it broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// The most bytes of one violation's description; longer ones are cut.
pub const MAX_VIOLATION_DESCRIPTION: usize = 1024;
/// The most bytes of one violation's field path.
pub const MAX_VIOLATION_FIELD: usize = 128;
/// The most bytes of all kept violations' fields and descriptions together:
/// the `google.rpc.BadRequest` of any answer fits well inside the 8 KiB
/// that gRPC clients accept for a status (PRECEDENTS.md §8c).
pub const MAX_VIOLATIONS_BYTES: usize = 3072;

/// The bad fields of one request: each (field, rule) once, cut to the
/// bounds above; what does not fit is counted, not kept.
#[derive(Debug, Default)]
pub struct Violations {
    kept: Vec<FieldViolation>,
    bytes: usize,
    omitted: usize,
}

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        let (field, description) = (field.into(), description.into());
        let v = FieldViolation {
            field: crate::domain::text::truncate(&field, MAX_VIOLATION_FIELD).into_owned(),
            description: crate::domain::text::truncate(&description, MAX_VIOLATION_DESCRIPTION)
                .into_owned(),
        };
        if self.kept.contains(&v) {
            return;
        }
        let size = v.field.len() + v.description.len();
        if self.bytes + size > MAX_VIOLATIONS_BYTES {
            self.omitted += 1;
            return;
        }
        self.bytes += size;
        self.kept.push(v);
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.omitted == 0
    }

    /// The kept violations, and one that counts the omitted ones.
    pub fn into_vec(self) -> Vec<FieldViolation> {
        let mut all = self.kept;
        if self.omitted > 0 {
            all.push(FieldViolation {
                field: "(more)".into(),
                description: format!(
                    "{} more violation(s) not listed; fix the ones above first",
                    self.omitted
                ),
            });
        }
        all
    }
}
