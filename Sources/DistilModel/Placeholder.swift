// DistilModel
