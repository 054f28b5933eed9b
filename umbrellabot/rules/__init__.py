"""The rule language, pure: the operator table, expressions, the rule model and its loading,
the RuleSet index, YAML item-set loading and the inline test cases. Imports `model` only."""
