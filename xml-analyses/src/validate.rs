//! Structural checks standing in for `xmlDefinition.xsd`.

use std::path::Path;

use crate::dom::Element;
use crate::XmlError;

pub fn validate(root: &Element, file: &Path) -> Result<(), XmlError> {
    if root.name != "tmfxml" {
        return Err(XmlError::Schema {
            file: file.to_path_buf(),
            line: root.line,
            element: root.name.clone(),
            message: "the root element must be <tmfxml>".into(),
        });
    }
    Ok(())
}
