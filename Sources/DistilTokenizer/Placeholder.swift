// DistilTokenizer
