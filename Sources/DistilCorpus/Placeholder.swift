// DistilCorpus
