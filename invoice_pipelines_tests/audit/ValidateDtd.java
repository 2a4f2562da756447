// Validates an XML file against the DTD its DOCTYPE names, with the JDK's own parser (JAXP):
// the tax-audit tests' second validator, which takes the GDPdU DTD as published (libxml2 refuses
// its non-deterministic Media content model). Usage: java ValidateDtd.java index.xml
import javax.xml.parsers.*;
import org.xml.sax.*;
import org.xml.sax.helpers.DefaultHandler;
public class ValidateDtd {
  public static void main(String[] a) throws Exception {
    SAXParserFactory f = SAXParserFactory.newInstance();
    f.setValidating(true);
    final int[] errors = {0};
    f.newSAXParser().parse(new java.io.File(a[0]), new DefaultHandler() {
      public void error(SAXParseException e) { errors[0]++; System.out.println("error: " + e.getLineNumber() + ": " + e.getMessage()); }
      public void fatalError(SAXParseException e) throws SAXException { throw e; }
      public void warning(SAXParseException e) { System.out.println("warning: " + e.getMessage()); }
    });
    System.out.println(errors[0] == 0 ? "valid" : "invalid");
    System.exit(errors[0] == 0 ? 0 : 1);
  }
}
