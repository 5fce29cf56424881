// Decodes Deskstream's messages with Apache Avro's Java library, in both framings:
//
// - the Confluent framing (00, 4-byte big-endian schema id, body): the writer schema is fetched
//   from the schema registry by id (GET <registry>/schemas/ids/{id}, plain HTTP), as any
//   registry-aware consumer does; nothing of ours is used;
// - the Avro single-object encoding (C3 01, fingerprint, body), written without a registry:
//   decoded from the published .avsc files alone.
//
//   java -cp '<libs>/*' DecodeCheck.java <schemas dir> <messages file> [<registry url>]
//
// <messages file> holds one message per line, hex-encoded. For each, one line on stdout: the
// decoded record as JSON (GenericRecord.toString()). Any failure exits non-zero with the reason.
// Needs Java 17 or newer (single-file source launch, java.util.HexFormat, java.net.http).

import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.avro.AvroRuntimeException;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.SchemaStore;

public class DecodeCheck {

  public static void main(String[] args) throws Exception {
    if (args.length != 2 && args.length != 3) {
      System.err.println("usage: DecodeCheck <schemas dir> <messages file> [<registry url>]");
      System.exit(2);
    }
    String registry = args.length == 3 ? args[2] : null;
    Map<Integer, Schema> byId = new HashMap<>();
    Map<String, Schema> types = parseAll(new File(args[0]));
    SchemaStore.Cache store = new SchemaStore.Cache();
    for (Schema schema : types.values()) {
      if (schema.getType() == Schema.Type.RECORD) {
        store.addSchema(schema);
      }
    }
    // Stdout in UTF-8 whatever the locale, so non-ASCII text reaches the test intact.
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
    Map<Schema, BinaryMessageDecoder<GenericRecord>> decoders = new HashMap<>();
    List<String> lines = Files.readAllLines(Path.of(args[1]), StandardCharsets.US_ASCII);
    for (String line : lines) {
      if (line.isBlank()) {
        continue;
      }
      byte[] message = HexFormat.of().parseHex(line.strip());
      if (message[0] == 0) {
        if (registry == null) {
          throw new IllegalStateException("a Confluent-framed message, but no registry url given");
        }
        int id = ByteBuffer.wrap(message, 1, 4).order(ByteOrder.BIG_ENDIAN).getInt();
        Schema writer = byId.computeIfAbsent(id, key -> fetchSchema(registry, key));
        GenericDatumReader<GenericRecord> reader = new GenericDatumReader<>(writer);
        GenericRecord record =
            reader.read(null, DecoderFactory.get().binaryDecoder(message, 5, message.length - 5, null));
        out.println(record.toString());
        continue;
      }
      // The decoder must be told which schema to read into; a consumer that expects one type
      // names it, and this check reads each message as the type its own fingerprint names.
      long fingerprint =
          ByteBuffer.wrap(message, 2, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
      Schema writer = store.findByFingerprint(fingerprint);
      if (writer == null) {
        throw new IllegalStateException(
            "no schema has fingerprint " + Long.toUnsignedString(fingerprint, 16));
      }
      BinaryMessageDecoder<GenericRecord> decoder =
          decoders.computeIfAbsent(
              writer, s -> new BinaryMessageDecoder<>(GenericData.get(), s, store));
      GenericRecord record = decoder.decode(message);
      out.println(record.toString());
    }
    out.flush();
  }

  // The writer schema a registry holds under an id: {"schema": "<schema JSON>", ...}.
  static Schema fetchSchema(String registry, int id) {
    try {
      HttpResponse<String> response =
          HttpClient.newHttpClient()
              .send(
                  HttpRequest.newBuilder(URI.create(registry + "/schemas/ids/" + id)).GET().build(),
                  HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
      if (response.statusCode() != 200) {
        throw new IllegalStateException(
            "registry answered " + response.statusCode() + " for schema " + id + ": " + response.body());
      }
      String text = new ObjectMapper().readTree(response.body()).get("schema").asText();
      return new Schema.Parser().parse(text);
    } catch (java.io.IOException | InterruptedException e) {
      throw new IllegalStateException("cannot fetch schema " + id + " from " + registry, e);
    }
  }

  // Parses every .avsc in the folder. A file that names a type not parsed yet fails as
  // undefined; it is retried once more types are known, until a pass makes no progress.
  static Map<String, Schema> parseAll(File folder) throws Exception {
    File[] files = folder.listFiles((dir, name) -> name.endsWith(".avsc"));
    if (files == null || files.length == 0) {
      throw new IllegalStateException("no .avsc files in " + folder);
    }
    Arrays.sort(files);
    List<File> pending = new ArrayList<>(Arrays.asList(files));
    Map<String, Schema> types = new LinkedHashMap<>();
    Map<File, String> lastError = new HashMap<>();
    while (!pending.isEmpty()) {
      List<File> retry = new ArrayList<>();
      for (File file : pending) {
        Schema.Parser parser = new Schema.Parser();
        parser.addTypes(types.values());
        try {
          parser.parse(file);
          types.putAll(parser.getTypes());
        } catch (AvroRuntimeException e) {
          // 1.11 says SchemaParseException, 1.12 AvroTypeException("Undefined schema").
          lastError.put(file, e.getMessage());
          retry.add(file);
        }
      }
      if (retry.size() == pending.size()) {
        StringBuilder why = new StringBuilder("cannot resolve schemas:");
        for (File file : retry) {
          why.append("\n  ").append(file.getName()).append(": ").append(lastError.get(file));
        }
        throw new IllegalStateException(why.toString());
      }
      pending = retry;
    }
    return types;
  }
}
