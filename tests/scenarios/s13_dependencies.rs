//! Scenario 13. TC dependencies resolved across one or several TAMs (recursively), with have-binary and minimum sequence numbers in requested-tc-list.
