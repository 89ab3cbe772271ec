//! Building the default image (issue 3).
