import DistilEval
import DistilFormats
import DistilModel
import Foundation

/// The embedded demo checkpoints (the repository's demo/ folder).
let demoDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("demo").path

/// A teacher stream of the demo teacher over `prompts`, in memory, as dl-teacher writes it.
func demoTeacherStream(_ prompts: [PromptRecord], maxNew: Int, temperature: Double = 0, seed: String? = nil,
                       batch: Int, threads: Int) throws -> [UInt8] {
    let lm = try LanguageModel.load(directory: demoDirectory + "/teacher", threads: threads)
    var o = TeacherOptions()
    o.maxNewTokens = maxNew; o.temperature = temperature; o.seed = seed; o.batch = batch
    let header = TeacherHeader(teacher: TeacherRef(repo: "demo/teacher", revision: nil, weightsSHA256: nil, block: 1, blockHash: "00"),
                               tokenizerSHA256: nil, generation: GenerationSettings(maxNewTokens: maxNew, temperature: temperature, topP: 1, seed: seed),
                               vocabSize: lm.vocabSize, nPrompts: prompts.count)
    let m = MemoryWriter()
    let w = try TeacherStreamWriter(m, header: header)
    try TeacherRunner(model: lm, tokenizer: nil, options: o).run(prompts, into: w)
    try w.finish()
    return m.bytes
}
