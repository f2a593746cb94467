// DistilTensors
