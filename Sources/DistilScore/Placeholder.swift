// DistilScore
