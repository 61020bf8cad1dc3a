"""The DataModule: raw files -> item embeddings (tokenizer view) and sequence batches
(recommender view), calling the tokenizer stage for the items' semantic IDs."""
