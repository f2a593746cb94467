// DistilHub
