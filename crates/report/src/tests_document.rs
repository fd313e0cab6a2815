//! Tests of the results document: recording, reading, merging, and the cell status.
